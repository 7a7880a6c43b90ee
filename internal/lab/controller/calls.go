package controller

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// callLog is the controller's record of the EC2 calls vpcsim served: the newest lab.EC2CallsKept
// (or keep) calls, in the order they ended. It is safe for concurrent use.
type callLog struct {
	mu      sync.Mutex
	keep    int
	calls   []lab.EC2Call // oldest first
	seq     uint64        // Seq of the last call added
	dropped uint64
}

func newCallLog(keep int) *callLog { return &callLog{keep: keep} }

// add numbers c and appends it, forgetting the oldest call when the record is full.
func (l *callLog) add(c lab.EC2Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	c.Seq = l.seq
	if len(l.calls) == l.keep {
		l.calls = append(l.calls[:0], l.calls[1:]...)
		l.dropped++
	}
	l.calls = append(l.calls, c)
}

// list returns the calls numbered above after, only caller's when caller is not "".
func (l *callLog) list(after uint64, caller string) lab.EC2Calls {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := lab.EC2Calls{Calls: []lab.EC2Call{}, Next: l.seq, Dropped: l.dropped}
	for _, c := range l.calls {
		if c.Seq > after && (caller == "" || c.Caller == caller) {
			out.Calls = append(out.Calls, c)
		}
	}
	return out
}

// recordCalls wraps vpcsim's EC2 handler (or a proxy to it): each request is served by h and
// recorded in log with its action, its caller as identify names it ("" if unknown), its
// timing and EC2's error code.
func recordCalls(h http.Handler, identify func(*http.Request) string, log *callLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		action := requestAction(r)
		caller := identify(r)
		rw := &errorCapture{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rw, r)
		log.add(lab.EC2Call{Action: action, Caller: caller, Start: start, End: time.Now(), Code: rw.code()})
	})
}

// recordingTransport records the calls an EC2 client makes through it (the controller's own).
type recordingTransport struct {
	base   http.RoundTripper
	caller string
	log    *callLog
}

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	action := requestAction(r)
	resp, err := t.base.RoundTrip(r)
	c := lab.EC2Call{Action: action, Caller: t.caller, Start: start}
	switch {
	case err != nil:
		c.Code = "transport-error"
	case resp.StatusCode >= 400:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		c.Code = errorCode(resp.StatusCode, b)
	}
	c.End = time.Now()
	t.log.add(c)
	return resp, err
}

// maxErrorBody bounds what is kept of an error answer to find its code.
const maxErrorBody = 16 << 10

// requestAction returns the EC2 action a Query-protocol request names, in its form body or
// its URL; "?" if none. The body is left for the handler to read again.
func requestAction(r *http.Request) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if r.Body == nil || r.Body == http.NoBody {
		return "?"
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if r.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	if err != nil {
		return "?"
	}
	if v, err := url.ParseQuery(string(b)); err == nil && v.Get("Action") != "" {
		return v.Get("Action")
	}
	return "?"
}

// errorCapture keeps the status and the start of an error answer while passing it on.
type errorCapture struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *errorCapture) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *errorCapture) Write(b []byte) (int, error) {
	if w.status >= 400 && len(w.body) < maxErrorBody {
		w.body = append(w.body, b[:min(len(b), maxErrorBody-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets a proxy flush through the capture.
func (w *errorCapture) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *errorCapture) code() string {
	if w.status < 400 {
		return ""
	}
	return errorCode(w.status, w.body)
}

// errorCode returns the code of an EC2 error answer, or "HTTP <status>" when the body names none.
func errorCode(status int, body []byte) string {
	var e struct {
		Errors struct {
			Error []struct {
				Code string `xml:"Code"`
			} `xml:"Error"`
		} `xml:"Errors"`
	}
	if xml.Unmarshal(body, &e) == nil && len(e.Errors.Error) > 0 && e.Errors.Error[0].Code != "" {
		return e.Errors.Error[0].Code
	}
	return fmt.Sprintf("HTTP %d", status)
}
