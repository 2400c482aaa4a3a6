package check

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
)

// Limits of the HTTP response reader.
const (
	// maxHeaderBytes bounds the status line and headers: a checker has no
	// use for more, and a server that sends more is not answering a
	// health check.
	maxHeaderBytes = 64 << 10
	// maxChunkLine bounds one chunk-size or trailer line.
	maxChunkLine = 4 << 10
	// maxKeptBody is how much of a body is kept for regex matching (the
	// digest covers the whole body): keepalived matches a stream through
	// a 4 KiB window with PCRE2 partial matching; RE2 has no partial
	// matching, so the first MiB is matched instead.
	maxKeptBody = 1 << 20
)

// httpResponse is what readResponse saw of one response.
type httpResponse struct {
	// status is the status code as keepalived's extract_status_code reads
	// it (lib/html.c): the digits after the first space of the status line;
	// 0 when there are none.
	status int
	// contentLength is the Content-Length header's value, -1 without one.
	contentLength int64
	chunked       bool
	// bodyLen is the number of body bytes read, digest their MD5 and body
	// the first bytes of them (up to the reader's keep limit).
	bodyLen int64
	digest  [md5.Size]byte
	body    []byte
}

// readResponse reads one HTTP response from r the way keepalived's
// http_read_thread does (keepalived/check/check_http.c, lib/html.c):
//
//   - the header ends at the first "\r\n\r\n"; a stream that ends before
//     it is ErrNoResponse ("no data received");
//   - the body is every byte after it, as received: its MD5 is what
//     genhash prints and what a url's digest is compared with, so a
//     chunked body is digested with its chunk framing, exactly as
//     keepalived and genhash do;
//   - with a Content-Length, only that many bytes count (keepalived stops
//     digesting there), and the reader stops there instead of waiting for
//     the server to close; a shorter body is accepted (keepalived logs the
//     mismatch and carries on);
//   - a chunked body ends after its last chunk and trailer, and any other
//     body at the end of the stream.
//
// keep is how many body bytes to keep in body (for a regex); 0 keeps none.
// The returned error is a read error (other than the end of the stream),
// or ErrNoResponse.
func readResponse(r io.Reader, keep int) (httpResponse, error) {
	resp := httpResponse{contentLength: -1}
	br := bufio.NewReaderSize(r, 4096)
	hdr, err := readHeader(br)
	if err != nil {
		return resp, err
	}
	parseHeader(hdr, &resp)

	s := &bodySink{keep: keep, h: md5.New()}
	switch {
	case resp.contentLength >= 0:
		_, err = io.CopyN(s, br, resp.contentLength)
	case resp.chunked:
		err = copyChunked(s, br)
	default:
		_, err = io.Copy(s, br)
	}
	if isEOF(err) {
		err = nil
	}
	resp.bodyLen, resp.body = s.n, s.kept
	copy(resp.digest[:], s.h.Sum(nil))
	return resp, err
}

// isEOF reports whether err is the end of the stream. A TLS connection
// closed without close_notify reads as io.ErrUnexpectedEOF; keepalived's
// ssl_read_thread takes that as the end of the body too.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// readHeader returns the header up to and including the first
// "\r\n\r\n". Every such sequence ends with '\n', so looking at the end of
// the header after each '\n' finds the first one.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if err == nil && bytes.HasSuffix(hdr, []byte("\r\n\r\n")) {
			return hdr, nil
		}
		if len(hdr) > maxHeaderBytes {
			return nil, fmt.Errorf("%w: header longer than %d bytes", ErrNoResponse, maxHeaderBytes)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case isEOF(err) && len(hdr) == 0:
			return nil, fmt.Errorf("%w: no data received", ErrNoResponse)
		case isEOF(err):
			return nil, fmt.Errorf("%w: connection closed after %d bytes of header", ErrNoResponse, len(hdr))
		default:
			return nil, err
		}
	}
}

// parseHeader fills the status, Content-Length and chunked fields of resp
// from the header hdr.
func parseHeader(hdr []byte, resp *httpResponse) {
	lines := bytes.Split(hdr, []byte("\n"))
	resp.status = statusCode(bytes.TrimSuffix(lines[0], []byte("\r")))
	for _, l := range lines[1:] {
		l = bytes.TrimSuffix(l, []byte("\r"))
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			// keepalived matches "Content-Length:" case-sensitively; header
			// names are case-insensitive (RFC 9110 §5.1) and the two agree on
			// every server that spells it the usual way.
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 && resp.contentLength < 0 {
				resp.contentLength = n
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if bytes.Contains(bytes.ToLower(value), []byte("chunked")) {
				resp.chunked = true
			}
		}
	}
	if resp.chunked {
		// RFC 9112 §6.3: chunked wins over Content-Length.
		resp.contentLength = -1
	}
}

// statusCode reads the status code of a status line as keepalived's
// extract_status_code does: the field after the first space, up to the
// next one, through atoi (leading digits; 0 without any).
func statusCode(line []byte) int {
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return 0
	}
	code := 0
	for i, c := range rest {
		// Nine digits cannot overflow an int; no status code has more than
		// three anyway.
		if c < '0' || c > '9' || i == 9 {
			break
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// copyChunked copies a chunked body (RFC 9112 §7.1) to s, framing and
// all, and stops after the last chunk's trailer section. A malformed
// chunk-size line ends the framing: the rest of the stream is copied as
// it comes, as keepalived (which does not decode chunks) would.
func copyChunked(s *bodySink, br *bufio.Reader) error {
	for {
		line, err := readLine(br, s)
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			_, err := io.Copy(s, br)
			return err
		}
		if size == 0 {
			for {
				line, err := readLine(br, s)
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := io.CopyN(s, br, size); err != nil {
			return err
		}
		if _, err := readLine(br, s); err != nil { // the chunk's CRLF
			return err
		}
	}
}

// readLine reads one line (through '\n') into s and returns it; a line
// longer than maxChunkLine is returned cut, which chunkSize rejects.
func readLine(br *bufio.Reader, s *bodySink) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		s.Write(part)
		if len(line) < maxChunkLine {
			line = append(line, part...)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// chunkSize parses the hexadecimal chunk-size at the start of a
// chunk-size line (extensions after ';' are ignored).
func chunkSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	// 15 hex digits stay below 2^60: no overflow, and no body is that long.
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line), 16, 64)
	return n, err == nil && n >= 0
}

// bodySink digests body bytes, counts them and keeps the first ones.
type bodySink struct {
	h    hash.Hash
	n    int64
	keep int
	kept []byte
}

func (s *bodySink) Write(p []byte) (int, error) {
	s.h.Write(p)
	s.n += int64(len(p))
	if room := s.keep - len(s.kept); room > 0 {
		s.kept = append(s.kept, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
