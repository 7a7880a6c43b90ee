package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// seconds parses a curl/nc/wget time value (decimal seconds).
func seconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, usage("bad time " + strconv.Quote(s))
	}
	return time.Duration(f * float64(time.Second)), nil
}

// runCurl is curl for one URL: -g -q -s -S -f -i -I -L -k -v, --connect-timeout S,
// --max-time/-m S, -o FILE, -w '%{http_code}', -X METHOD, -H HEADER, -d DATA, --interface IP.
// Exit codes are curl's: 6 no host, 7 refused, 22 HTTP error with -f, 28 timeout.
func runCurl(e env, args []string) error {
	var url, out, wfmt, method, data, iface string
	var include, head, fail bool
	var connect, max time.Duration
	hdr := http.Header{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch a {
		case "-g", "--globoff", "-q", "-s", "--silent", "-S", "--show-error", "-L", "--location", "-k", "--insecure", "-v", "--verbose", "-sS":
		case "-f", "--fail":
			fail = true
		case "-i", "--include":
			include = true
		case "-I", "--head":
			head = true
		case "--connect-timeout":
			var v string
			if v, err = needArg(args, &i); err == nil {
				connect, err = seconds(v)
			}
		case "-m", "--max-time":
			var v string
			if v, err = needArg(args, &i); err == nil {
				max, err = seconds(v)
			}
		case "-o", "--output":
			out, err = needArg(args, &i)
		case "-w", "--write-out":
			wfmt, err = needArg(args, &i)
		case "-X", "--request":
			method, err = needArg(args, &i)
		case "-H", "--header":
			var v string
			if v, err = needArg(args, &i); err == nil {
				k, val, _ := strings.Cut(v, ":")
				hdr.Add(strings.TrimSpace(k), strings.TrimSpace(val))
			}
		case "-d", "--data":
			data, err = needArg(args, &i)
		case "--interface":
			iface, err = needArg(args, &i)
		default:
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				return badFlag(a)
			}
			url = a
		}
		if err != nil {
			return err
		}
	}
	if url == "" {
		return usage("no URL")
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if method == "" {
		method = http.MethodGet
		if head {
			method = http.MethodHead
		} else if data != "" {
			method = http.MethodPost
		}
	}
	d := &net.Dialer{Timeout: connect}
	if iface != "" {
		ip := net.ParseIP(iface)
		if ip == nil {
			return usage("--interface wants an address, not " + strconv.Quote(iface))
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	hc := &http.Client{Timeout: max, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var body io.Reader
	if data != "" {
		body = strings.NewReader(data)
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req, err := http.NewRequestWithContext(e.ctx, method, url, body)
	if err != nil {
		return exitCode(3)
	}
	req.Header = hdr
	resp, err := hc.Do(req)
	if err != nil {
		if wfmt != "" {
			fmt.Fprint(e.stdout, strings.ReplaceAll(wfmt, "%{http_code}", "000"))
		}
		return curlErr(err)
	}
	defer resp.Body.Close()
	w := e.stdout
	if out != "" && out != "-" {
		if out == "/dev/null" {
			w = io.Discard
		} else {
			f, err := os.Create(out)
			if err != nil {
				return exitCode(23)
			}
			defer f.Close()
			w = f
		}
	}
	if fail && resp.StatusCode >= 400 {
		return exitCode(22)
	}
	if include || head {
		fmt.Fprintf(w, "HTTP/%d.%d %s\r\n", resp.ProtoMajor, resp.ProtoMinor, resp.Status)
		_ = resp.Header.Write(w)
		fmt.Fprint(w, "\r\n")
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return curlErr(err)
	}
	if wfmt != "" {
		fmt.Fprint(e.stdout, strings.ReplaceAll(wfmt, "%{http_code}", strconv.Itoa(resp.StatusCode)))
	}
	return nil
}

func curlErr(err error) error {
	var ne net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return exitCode(6)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return exitCode(28)
	case strings.Contains(err.Error(), "connection refused"):
		return exitCode(7)
	}
	return exitCode(56)
}

// runWget is `wget [-q] [-T S] [-O FILE|-] URL` (also -qO-).
func runWget(e env, args []string) error {
	var cargs []string
	out := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch a {
		case "-q", "--quiet", "-s", "--spider":
		case "-qO-", "-O-":
			out = "-"
		case "-O":
			out, err = needArg(args, &i)
		case "-T", "--timeout":
			var v string
			if v, err = needArg(args, &i); err == nil {
				cargs = append(cargs, "--max-time", v)
			}
		default:
			if strings.HasPrefix(a, "-") {
				return badFlag(a)
			}
			cargs = append(cargs, a)
		}
		if err != nil {
			return err
		}
	}
	if out != "" && out != "-" {
		cargs = append(cargs, "-o", out)
	}
	if err := runCurl(e, append(cargs, "-f")); err != nil {
		return exitCode(1)
	}
	return nil
}

// runNc is `nc [-u|-t] [-v] [-z] [-w S] HOST PORT`: stdin goes to the peer, the peer's answer to
// stdout; with -u the answer is waited for until -w expires (the e2e UDP echo checks).
func runNc(e env, args []string) error {
	proto, verbose, zero := "tcp", false, false
	wait := time.Duration(0)
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) == 1 {
			pos = append(pos, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'u':
				proto = "udp"
			case 't':
				proto = "tcp"
			case 'v':
				verbose = true
			case 'z':
				zero = true
			case 'n':
			case 'w':
				v := a[j+1:]
				if v == "" {
					var err error
					if v, err = needArg(args, &i); err != nil {
						return err
					}
				}
				d, err := seconds(v)
				if err != nil {
					return err
				}
				wait = d
				j = len(a)
			default:
				return badFlag("-" + string(a[j]))
			}
		}
	}
	if len(pos) != 2 {
		return usage("want HOST PORT")
	}
	addr := net.JoinHostPort(pos[0], pos[1])
	dt := wait
	if dt == 0 {
		dt = 30 * time.Second
	}
	c, err := net.DialTimeout(proto, addr, dt)
	if err != nil {
		if verbose {
			fmt.Fprintf(e.stderr, "nc: %s (%s) open failed: %v\n", pos[0], pos[1], err)
		}
		return exitCode(1)
	}
	defer c.Close()
	if verbose {
		fmt.Fprintf(e.stderr, "%s (%s:%s) open\n", pos[0], pos[0], pos[1])
	}
	if zero {
		return nil
	}
	in, _ := io.ReadAll(e.stdin)
	if _, err := c.Write(in); err != nil {
		return exitCode(1)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	if wait > 0 {
		_ = c.SetReadDeadline(time.Now().Add(wait))
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			_, _ = e.stdout.Write(buf[:n])
			if proto == "udp" {
				_ = c.SetReadDeadline(time.Now().Add(minDur(wait, time.Second)))
			}
		}
		if err != nil {
			return nil
		}
	}
}

func minDur(a, b time.Duration) time.Duration {
	if a > 0 && a < b {
		return a
	}
	return b
}
