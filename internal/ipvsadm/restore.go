package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ReadRestore is ipvsadm -R with the zero Parser: see Parser.ReadRestore.
func ReadRestore(r io.Reader, apply func(Command) error, out io.Writer) error {
	var p Parser
	return p.ReadRestore(r, apply, out)
}

// ReadRestore is ipvsadm -R (restore_table): it reads commands from r,
// one per line, split as config_stream.c splits them, and hands each to
// apply, in order. out is ipvsadm's stderr: the messages ipvsadm prints
// there are written to it. The result is what ipvsadm's exit status would
// be: nil for 0, an *ExitError otherwise, or the error of reading r.
//
// Lines are split on spaces, tabs, carriage returns and newlines; there
// is no quoting, and '#' is an ordinary character (a comment line is a
// line of leftover arguments, which fails). A word "ipvsadm" anywhere is
// dropped, so lines may start with it. Lines without words are skipped.
//
// A line that fails to parse stops the restore with its message and
// status (2, or 255 for "Try `ipvsadm -h' ..."); what was applied before
// stays. popt's errors after the command ("-Q: unknown option") are
// printed and the restore goes on. A -R line fails like an unknown
// option; -h and -v lines are applied (the caller prints the help or the
// version) and end the restore with status 0. When apply fails, the
// message of Command.Failure is printed and the restore goes on, except
// for listings (-L, -S), which end it with status 1. The final status is
// that of the last line processed: 0, or 255 if it failed.
func (p *Parser) ReadRestore(r io.Reader, apply func(Command) error, out io.Writer) error {
	sr := streamReader{r: bufio.NewReader(r)}
	result := 0
	for {
		words, ok, err := sr.readLine()
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if !ok {
			break
		}
		if len(words) == 0 {
			continue
		}
		c, err := p.Parse(words)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				return err
			}
			fmt.Fprintln(out, ue.Msg)
			if ue.NonFatal {
				result = ue.Code
				continue
			}
			return &ExitError{Code: ue.Code}
		}
		switch c.Kind {
		case CmdRestore:
			// restore_table refuses to nest: tryhelp_exit.
			fmt.Fprintln(out, tryHelp(p.program()).Msg)
			return &ExitError{Code: ExitPopt}
		case CmdHelp, CmdVersion:
			// usage_exit and version_exit end ipvsadm with status 0.
			return apply(c)
		}
		if err := apply(c); err != nil {
			text, code := c.Failure(err)
			if text != "" {
				fmt.Fprintln(out, text)
			}
			if c.Kind == CmdList || c.Kind == CmdSave {
				return &ExitError{Code: code}
			}
			result = code
			continue
		}
		result = 0
	}
	if result != 0 {
		return &ExitError{Code: result}
	}
	return nil
}

// maxToken is MAX_LINE_LENGTH of config_stream.h, the width of the
// fscanf conversion that reads one word: a longer word is split.
const maxToken = 4096

// streamReader is config_stream_read: fscanf(stream,
// "%4096[^ \t\n\r]%1[ \t\n\r]") in a loop, with its quirks.
type streamReader struct {
	r *bufio.Reader
}

func isStreamSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// readLine returns the words of the next line (none for an empty one), or
// ok false at the end of the stream. Like config_stream_read, it drops the
// words of a last line that ends in two or more blanks without a newline.
func (sr *streamReader) readLine() (words []string, ok bool, err error) {
	added := 0
	for {
		c, err := sr.r.ReadByte()
		if err == io.EOF {
			break // fscanf returns EOF
		}
		if err != nil {
			return nil, false, err
		}
		if isStreamSpace(c) {
			// The word conversion fails (fscanf returns 0): skip blanks
			// up to the next word or the end of the line.
			for {
				if c == '\n' {
					return words, true, nil
				}
				c, err = sr.r.ReadByte()
				if err == io.EOF {
					return nil, false, nil // the line's words are lost
				}
				if err != nil {
					return nil, false, err
				}
				if !isStreamSpace(c) {
					if err := sr.r.UnreadByte(); err != nil {
						return nil, false, err
					}
					break
				}
			}
			continue
		}
		tok := []byte{c}
		tail := byte(0) // the blank after the word; 0 when there is none
		for len(tok) < maxToken {
			c, err = sr.r.ReadByte()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, false, err
			}
			if isStreamSpace(c) {
				tail = c
				break
			}
			tok = append(tok, c)
		}
		if tail == 0 && len(tok) == maxToken {
			// The word filled the conversion: the blank conversion
			// reads the next byte, which only a blank satisfies.
			c, err = sr.r.ReadByte()
			switch {
			case err == io.EOF:
			case err != nil:
				return nil, false, err
			case isStreamSpace(c):
				tail = c
			default:
				if err := sr.r.UnreadByte(); err != nil {
					return nil, false, err
				}
			}
		}
		if w := cString(string(tok)); w != "ipvsadm" {
			words = append(words, w)
			added++
		}
		if tail == '\n' {
			return words, true, nil
		}
	}
	if added == 0 {
		return nil, false, nil
	}
	return words, true, nil
}
