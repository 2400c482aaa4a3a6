package keepalived

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzParseBytes: any input parses to a result or errors, without
// panicking, and ends, includes of itself and of each other included.
func FuzzParseBytes(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"include main.conf\n",
		"include loop/*.conf\n",
		"$A=$A$A\n$A\n",
		"$A=\\\n$A\\\n\n$A\n",
		"~SEQ(A, 1, 3) ~SEQ(B, 1, 3) $A$B\n",
		"@^x $X=include main.conf\n$X\n",
		"virtual_server group G {\n}\nvirtual_server_group G {\n 10.0.0.0/8 80\n}\n",
		"vrrp_instance { { } } }\n\"",
	} {
		f.Add([]byte(s))
	}
	fsys := fstest.MapFS{
		"loop/a.conf": {Data: []byte("include b.conf\ninclude a.conf\n")},
		"loop/b.conf": {Data: []byte("include ../main.conf\n")},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := fstest.MapFS{"main.conf": {Data: data}}
		for k, v := range fsys {
			fs[k] = v
		}
		cfg, diags, err := ParseBytes("main.conf", data, Options{FS: fs})
		if cfg == nil {
			t.Fatal("nil Config")
		}
		if (err != nil) != (len(errorsOf(diags)) > 0) {
			t.Fatalf("err %v with diagnostics %v", err, diags)
		}
		_ = cfg.Dump()
	})
}

func errorsOf(ds []Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		if !d.Warning {
			out = append(out, d)
		}
	}
	return out
}
