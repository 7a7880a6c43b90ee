package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sh runs a script in the interpreter as the e2e framework does (`/bin/sh -c SCRIPT`) and
// returns stdout and the exit status.
func sh(t *testing.T, script string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := env{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	st := status(runSh(e, []string{"-c", script}), "sh", &errb)
	if errb.Len() > 0 {
		t.Logf("stderr of %q: %s", script, errb.String())
	}
	return out.String(), st
}

func TestShPipelinesAndStatus(t *testing.T) {
	if out, st := sh(t, "echo hostName | grep -v nothing | cat"); out != "hostName\n" || st != 0 {
		t.Errorf("pipeline: %q, %d", out, st)
	}
	if out, st := sh(t, "for i in $(seq 1 3); do echo -n $i; done; echo"); out != "123\n" || st != 0 {
		t.Errorf("for/seq: %q, %d", out, st)
	}
	if _, st := sh(t, "echo a | grep -q b"); st != 1 {
		t.Errorf("grep without a match: status %d, want 1", st)
	}
	if _, st := sh(t, "timeout 0.2 sleep 10"); st != 124 {
		t.Errorf("timeout: status %d, want 124", st)
	}
	if _, st := sh(t, "curl --bogus http://127.0.0.1:1/"); st != 2 {
		t.Errorf("unknown curl flag: status %d, want 2", st)
	}
	if out, st := sh(t, `test -n "$(echo x)" && echo OK`); out != "OK\n" || st != 0 {
		t.Errorf("test -n: %q, %d", out, st)
	}
}

func TestCurl(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"responses":[%q]}`, r.URL.Query().Get("request"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if out, st := sh(t, fmt.Sprintf("curl -g -q -s 'http://%s/dial?request=hostname&protocol=http&tries=1'", addr)); out != `{"responses":["hostname"]}` || st != 0 {
		t.Errorf("dial: %q, %d", out, st)
	}
	if out, _ := sh(t, fmt.Sprintf("curl -g -q -s -o /dev/null -w %%{http_code} http://%s/missing", addr)); out != "404" {
		t.Errorf("-w http_code: %q, want 404", out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	if _, st := sh(t, "curl -q -s --connect-timeout 2 http://"+closed+"/"); st != 7 {
		t.Errorf("refused: status %d, want 7", st)
	}
}

func TestNcUDPEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("echo:"+strings.TrimSpace(string(buf[:n]))), from)
		}
	}()
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	out, st := sh(t, "echo hostName | nc -w 1 -u 127.0.0.1 "+port)
	if out != "echo:hostName" || st != 0 {
		t.Errorf("nc -u: %q, %d", out, st)
	}
}

// nslookup, as the Services specs' ExternalName checks run it: a name that resolves (here from
// /etc/hosts, so no DNS traffic leaves the machine) exits 0 with its address; one that cannot
// exits 1; a flag is a usage error.
func TestNslookup(t *testing.T) {
	if out, st := sh(t, "nslookup localhost"); st != 0 || !strings.Contains(out, "Address: 127.0.0.1") {
		t.Errorf("nslookup localhost: %q, status %d", out, st)
	}
	if _, st := sh(t, "nslookup bad..name"); st != 1 {
		t.Errorf("nslookup of an invalid name: status %d, want 1", st)
	}
	if _, st := sh(t, "nslookup -type=A localhost"); st != 2 {
		t.Errorf("nslookup with a flag: status %d, want 2", st)
	}
}

// The DNS specs query PTR by reverse name (dig ... 4.3.2.1.in-addr.arpa. PTR), which the
// resolver takes as the address.
func TestArpaAddr(t *testing.T) {
	for in, want := range map[string]string{"219.87.20.172.in-addr.arpa.": "172.20.87.219", "1.0.0.127.in-addr.arpa": "127.0.0.1",
		"10.0.0.1": "10.0.0.1", "1.2.in-addr.arpa.": "1.2.in-addr.arpa."} {
		if got := arpaAddr(in); got != want {
			t.Errorf("arpaAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
