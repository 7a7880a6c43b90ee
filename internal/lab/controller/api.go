package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// controlAPI serves the CLI: see lab/api.go for the types.
func (c *Controller) controlAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("GET /v1/ec2/calls", func(w http.ResponseWriter, r *http.Request) {
		after, err := parseAfter(r.URL.Query().Get("after"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, c.calls.list(after, r.URL.Query().Get("instance")))
	})
	mux.HandleFunc("POST /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		var req lab.NodeRequest
		if !readJSON(w, r, &req) {
			return
		}
		c.stream(w, r, func(ctx context.Context, step func(string)) (any, error) {
			n, err := c.addNode(ctx, req, step)
			if err != nil {
				return nil, err
			}
			st, err := c.status(ctx)
			if err != nil {
				return nil, err
			}
			for _, ni := range st.Nodes {
				if ni.Name == n.name {
					return ni, nil
				}
			}
			return nil, errors.New("node vanished")
		})
	})
	mux.HandleFunc("DELETE /v1/nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		c.stream(w, r, func(ctx context.Context, step func(string)) (any, error) {
			n, err := c.nodeByName(r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			step("removing node " + n.name + ": its pods, vpcnetd, instance " + n.instanceID + ", namespace " + n.ns)
			c.removeNode(n)
			return map[string]string{"removed": n.name}, nil
		})
	})
	mux.HandleFunc("POST /v1/pods", func(w http.ResponseWriter, r *http.Request) {
		var req lab.PodRequest
		if !readJSON(w, r, &req) {
			return
		}
		c.stream(w, r, func(ctx context.Context, step func(string)) (any, error) {
			p, err := c.runPod(ctx, req, step)
			if err != nil {
				return nil, err
			}
			return podInfo(p), nil
		})
	})
	mux.HandleFunc("DELETE /v1/pods/{name}", func(w http.ResponseWriter, r *http.Request) {
		c.stream(w, r, func(ctx context.Context, step func(string)) (any, error) {
			p, err := c.podByName(r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			step("removing pod " + p.name + " from " + p.node + ": CNI DEL, namespace " + p.ns)
			return podInfo(p), c.deletePod(p)
		})
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"shutdown": c.cfg.Name})
		c.shutdown()
	})
	return mux
}

// stream runs one change with the lab's changes serialized, sending progress lines as it goes
// and the result or error last.
func (c *Controller) stream(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, step func(string)) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	var wmu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(p lab.Progress) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = enc.Encode(p)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	c.op.Lock()
	defer c.op.Unlock()
	res, err := f(r.Context(), func(s string) {
		c.logf("%s", s)
		send(lab.Progress{Step: s})
	})
	if err != nil {
		code := ""
		var ce codedError
		if errors.As(err, &ce) {
			code = ce.code
		}
		c.logf("%s %s: %v", r.Method, r.URL.Path, err)
		send(lab.Progress{Error: err.Error(), Code: code})
		return
	}
	send(lab.Progress{Result: res})
}

// parseAfter reads the after parameter of the EC2 call record: a call number, "" for 0.
func parseAfter(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("after=%q: want the number of a call (0 for all)", s)
	}
	return n, nil
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
