package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"golvs/internal/logx"
)

// lvsd's log: the format the flag names, and a repeating event cut to
// the burst with its count written at exit.
func TestNewLogger(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(&buf, format).With("component", "lvsd")
			for range logx.DefaultBurst + 3 {
				log.Warn("data-path worker failed; restarting", "queue", 0, "err", "boom")
			}
			log.Info("stopping")
			closeLogger(log)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			// The burst, "stopping", then the summary of 3.
			if len(lines) != logx.DefaultBurst+2 {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), logx.DefaultBurst+2, &buf)
			}
			last := lines[len(lines)-1]
			switch format {
			case "json":
				for _, l := range lines {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil || m["component"] != "lvsd" {
						t.Errorf("not a JSON record of component lvsd: %q (%v)", l, err)
					}
				}
				var m map[string]any
				_ = json.Unmarshal([]byte(last), &m)
				if m["msg"] != "data-path worker failed; restarting" || m["suppressed"] != 3.0 {
					t.Errorf("summary: %q", last)
				}
			case "text":
				if !strings.Contains(last, `msg="data-path worker failed; restarting"`) || !strings.Contains(last, "suppressed=3") ||
					!strings.Contains(last, "component=lvsd") {
					t.Errorf("summary: %q", last)
				}
			}
		})
	}
}
