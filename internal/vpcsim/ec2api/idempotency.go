package ec2api

import (
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// CodeIdempotentParameterMismatch is EC2's answer to a client token reused with other
// parameters ("Ensuring idempotency in Amazon EC2 API requests", EC2 API reference).
const CodeIdempotentParameterMismatch = "IdempotentParameterMismatch"

// maxTokens bounds the remembered client tokens; the oldest go first. EC2 keeps a token for
// at least a day; vpcsim keeps the newest maxTokens, in memory (a restart forgets them).
const maxTokens = 4096

// tokens makes calls that carry a ClientToken idempotent, as EC2 does for RunInstances,
// CreateNetworkInterface and the other actions with that parameter: a repeat of a successful
// call with the same token and the same parameters gets the first call's answer and changes
// nothing (the AWS SDKs fill ClientToken and resend it when they retry a call whose answer was
// lost, so without this a retry launched or created twice); the same token with other
// parameters is IdempotentParameterMismatch. A failed call is not remembered, so its retry
// runs again. A repeat that arrives while the first call runs waits for it.
type tokens struct {
	mu    sync.Mutex
	byKey map[string]*tokenCall
	order []string
}

type tokenCall struct {
	params string        // the call's parameters without ClientToken, canonically encoded
	done   chan struct{} // closed when the first call has answered
	rep    reply
	ok     bool
}

// do runs call once per (caller, action, token); q holds the request's parameters.
func (t *tokens) do(caller, action string, q url.Values, call func() (reply, error)) (reply, error) {
	token := q.Get("ClientToken")
	if token == "" {
		return call()
	}
	key := caller + "\x00" + action + "\x00" + token
	fp := fingerprint(q)
	for {
		t.mu.Lock()
		if t.byKey == nil {
			t.byKey = map[string]*tokenCall{}
		}
		c, seen := t.byKey[key]
		if !seen {
			c = &tokenCall{params: fp, done: make(chan struct{})}
			t.byKey[key] = c
			t.mu.Unlock()
			rep, err := call()
			t.mu.Lock()
			if err != nil {
				delete(t.byKey, key)
			} else {
				c.rep, c.ok = rep, true
				t.order = append(t.order, key)
				for len(t.order) > maxTokens {
					delete(t.byKey, t.order[0])
					t.order = t.order[1:]
				}
			}
			close(c.done)
			t.mu.Unlock()
			return rep, err
		}
		t.mu.Unlock()
		if c.params != fp {
			return nil, model.Errf(CodeIdempotentParameterMismatch, "The client token %q was used before with other parameters.", token)
		}
		<-c.done
		if c.ok {
			return c.rep, nil
		}
		// The first call failed and was forgotten: run this one as a new call.
	}
}

// fingerprint encodes q without ClientToken (and the request's Version), keys sorted.
func fingerprint(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "ClientToken" && k != "Version" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(url.QueryEscape(k))
		for _, v := range q[k] {
			b.WriteString("=" + url.QueryEscape(v))
		}
		b.WriteByte('&')
	}
	return b.String()
}
