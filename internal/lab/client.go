package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Client talks to a lab's controller over its control socket.
type Client struct {
	Name  string
	Paths Paths
	hc    *http.Client
}

// ErrNotUp says the lab has no running controller.
var ErrNotUp = errors.New("lab is not up")

// NewClient returns a client of the named lab. It fails with ErrNotUp when the lab has no
// control socket.
func NewClient(name string) (*Client, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p := PathsFor(name)
	if _, err := os.Stat(p.ControlSocket()); err != nil {
		return nil, fmt.Errorf("lab %s: %w (start it with `vpcnet lab up --name %s`)", name, ErrNotUp, name)
	}
	if ControllerAlive(name) == 0 {
		return nil, fmt.Errorf("lab %s: %w: its controller is gone (see %s); `vpcnet lab down --name %s` cleans up, `vpcnet lab up --name %s` starts afresh",
			name, ErrNotUp, p.ControllerLog(), name, name)
	}
	return &Client{Name: name, Paths: p, hc: unixHTTP(p.ControlSocket())}, nil
}

// unixHTTP returns an HTTP client whose every connection goes to the unix socket.
func unixHTTP(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// APIError is a failed request, with the controller's code.
type APIError struct {
	Code string
	Msg  string
}

func (e *APIError) Error() string { return e.Msg }

// Status fetches the whole lab's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://lab/v1/status", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("lab %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("lab %s: status: %s", c.Name, bytes.TrimSpace(b))
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// AddNode starts a node and returns it once its agent is ready.
func (c *Client) AddNode(ctx context.Context, req NodeRequest, progress func(string)) (NodeInfo, error) {
	var n NodeInfo
	if err := c.call(ctx, http.MethodPost, "/v1/nodes", req, progress, &n); err != nil {
		return n, err
	}
	if rt := c.runtime(); rt != nil {
		return n, rt.NodeAdded(ctx, c, n, progress)
	}
	return n, nil
}

// RemoveNode removes a node with its pods.
func (c *Client) RemoveNode(ctx context.Context, name string, progress func(string)) error {
	if rt := c.runtime(); rt != nil {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		n, err := FindNode(st, name)
		if err != nil {
			return err
		}
		if err := rt.NodeRemoving(ctx, c, n, progress); err != nil {
			return err
		}
	}
	return c.call(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(name), nil, progress, nil)
}

// RunPod starts a pod and returns it with its address.
func (c *Client) RunPod(ctx context.Context, req PodRequest, progress func(string)) (PodInfo, error) {
	var p PodInfo
	return p, c.call(ctx, http.MethodPost, "/v1/pods", req, progress, &p)
}

// RemovePod removes a pod.
func (c *Client) RemovePod(ctx context.Context, name string, progress func(string)) error {
	return c.call(ctx, http.MethodDelete, "/v1/pods/"+url.PathEscape(name), nil, progress, nil)
}

// EC2Calls returns the EC2 calls the lab recorded after the call numbered after (0: from the
// oldest kept), only the given instance's when instance is not "".
func (c *Client) EC2Calls(ctx context.Context, after uint64, instance string) (EC2Calls, error) {
	var out EC2Calls
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	if instance != "" {
		q.Set("instance", instance)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://lab/v1/ec2/calls?"+q.Encode(), nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("lab %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return out, fmt.Errorf("lab %s: EC2 calls: %s", c.Name, bytes.TrimSpace(b))
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// Shutdown asks the controller to tear the lab down and exit.
func (c *Client) Shutdown(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://lab/v1/shutdown", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// call sends a streamed request, handing each progress line to progress and decoding the
// result into out.
func (c *Client) call(ctx context.Context, method, path string, body any, progress func(string), out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://lab"+path, rd)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("lab %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("lab %s: %s", c.Name, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line struct {
			Progress
			Result json.RawMessage `json:"result,omitempty"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("lab %s: bad answer: %w", c.Name, err)
		}
		switch {
		case line.Error != "":
			return &APIError{Code: line.Code, Msg: line.Error}
		case line.Result != nil:
			if out == nil {
				return nil
			}
			return json.Unmarshal(line.Result, out)
		case progress != nil:
			progress(line.Step)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("lab %s: the controller hung up without an answer (see %s)", c.Name, c.Paths.ControllerLog())
}

// WaitUp waits until the controller answers on its control socket, or pid exits.
func WaitUp(ctx context.Context, name string, pid int, timeout time.Duration) (*Client, error) {
	deadline := time.Now().Add(timeout)
	p := PathsFor(name)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if pid > 0 && !Alive(pid) {
			return nil, fmt.Errorf("lab %s: the controller exited; its log %s ends:\n%s", name, p.ControllerLog(), tail(p.ControllerLog(), 15))
		}
		if c, err := NewClient(name); err == nil {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = c.Status(sctx)
			cancel()
			if err == nil {
				return c, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("lab %s: the controller did not answer within %s; see %s", name, timeout, p.ControllerLog())
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
