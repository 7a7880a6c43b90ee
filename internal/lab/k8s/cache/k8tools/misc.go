package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runGrep is `grep [-v] [-q] [-i] [-E] [-F] [-c] [-m N] PATTERN [FILE...]`.
func runGrep(e env, args []string) error {
	invert, quiet, icase, fixed, count := false, false, false, false, false
	max := -1
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) == 1 || len(pos) > 0 {
			pos = append(pos, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'v':
				invert = true
			case 'q':
				quiet = true
			case 'i':
				icase = true
			case 'E':
			case 'F':
				fixed = true
			case 'c':
				count = true
			case 'm':
				v := a[j+1:]
				if v == "" {
					var err error
					if v, err = needArg(args, &i); err != nil {
						return err
					}
				}
				n, err := strconv.Atoi(v)
				if err != nil {
					return usage("bad -m " + v)
				}
				max, j = n, len(a)
			default:
				return badFlag("-" + string(a[j]))
			}
		}
	}
	if len(pos) == 0 {
		return usage("no pattern")
	}
	pat := pos[0]
	if fixed {
		pat = regexp.QuoteMeta(pat)
	}
	if icase {
		pat = "(?i)" + pat
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return usage("bad pattern: " + err.Error())
	}
	var ins []io.Reader
	for _, f := range pos[1:] {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		defer fh.Close()
		ins = append(ins, fh)
	}
	if len(ins) == 0 {
		ins = []io.Reader{e.stdin}
	}
	n := 0
	for _, in := range ins {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() && (max < 0 || n < max) {
			if re.MatchString(sc.Text()) != invert {
				n++
				if !quiet && !count {
					fmt.Fprintln(e.stdout, sc.Text())
				}
			}
		}
	}
	if count {
		fmt.Fprintln(e.stdout, n)
	}
	if n == 0 {
		return exitCode(1)
	}
	return nil
}

// runCat copies the files (or stdin) to stdout.
func runCat(e env, args []string) error {
	if len(args) == 0 {
		_, err := io.Copy(e.stdout, e.stdin)
		return err
	}
	for _, f := range args {
		if f == "-" {
			if _, err := io.Copy(e.stdout, e.stdin); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := e.stdout.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// runSleep is `sleep S` (decimal seconds) or `sleep infinity`.
func runSleep(e env, args []string) error {
	if len(args) != 1 {
		return usage("want one duration")
	}
	if args[0] == "infinity" || args[0] == "inf" {
		<-e.ctx.Done()
		return e.ctx.Err()
	}
	d, err := seconds(strings.TrimSuffix(args[0], "s"))
	if err != nil {
		return err
	}
	select {
	case <-time.After(d):
		return nil
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
}

// runSeq is `seq [FIRST] LAST`.
func runSeq(e env, args []string) error {
	first, last := 1, 0
	var err error
	switch len(args) {
	case 1:
		last, err = strconv.Atoi(args[0])
	case 2:
		if first, err = strconv.Atoi(args[0]); err == nil {
			last, err = strconv.Atoi(args[1])
		}
	default:
		return usage("want [FIRST] LAST")
	}
	if err != nil {
		return usage("bad number")
	}
	for i := first; i <= last; i++ {
		fmt.Fprintln(e.stdout, i)
	}
	return nil
}

// runHostname prints the host name (`hostname`, also -i: the addresses it resolves to).
func runHostname(e env, args []string) error {
	h, err := os.Hostname()
	if err != nil {
		return err
	}
	if len(args) == 1 && args[0] == "-i" {
		addrs, err := net.LookupHost(h)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, strings.Join(addrs, " "))
		return nil
	}
	if len(args) > 0 {
		return badFlag(args[0])
	}
	fmt.Fprintln(e.stdout, h)
	return nil
}

// runTimeout is `timeout [-s SIG] SECONDS COMMAND [ARG...]` for our own commands (exit 124 on
// expiry).
func runTimeout(e env, args []string) error {
	if len(args) >= 2 && (args[0] == "-s" || args[0] == "-t") {
		args = args[2:]
	}
	if len(args) < 2 {
		return usage("want SECONDS COMMAND")
	}
	d, err := seconds(strings.TrimSuffix(args[0], "s"))
	if err != nil {
		return err
	}
	cmd, ok := commands[baseName(args[1])]
	if !ok {
		return fmt.Errorf("%s: not a k8tools command", args[1])
	}
	ctx, cancel := context.WithTimeout(e.ctx, d)
	defer cancel()
	sub := e
	sub.ctx = ctx
	err = cmd(sub, args[2:])
	if ctx.Err() != nil {
		return exitCode(124)
	}
	return err
}

// runGetent is `getent hosts NAME`: "ADDRESS NAME" per address.
func runGetent(e env, args []string) error {
	if len(args) != 2 || args[0] != "hosts" {
		return usage("want: getent hosts NAME")
	}
	addrs, err := net.DefaultResolver.LookupHost(e.ctx, args[1])
	if err != nil || len(addrs) == 0 {
		return exitCode(2)
	}
	for _, a := range addrs {
		fmt.Fprintf(e.stdout, "%s %s\n", a, args[1])
	}
	return nil
}

// runDig is the part of dig the DNS specs use: `dig [+notcp|+tcp] [+noall] [+answer] [+search]
// [+short] NAME [A|AAAA|SRV|CNAME|PTR]` (and -x ADDR). It prints answer lines; nothing (exit 0, as
// dig does) when the name does not resolve, so the specs' `test -n "$(dig ...)"` sees failure.
func runDig(e env, args []string) error {
	tcp, short, search := false, false, false
	name, typ := "", "A"
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "+tcp" || a == "+vc":
			tcp = true
		case a == "+notcp" || a == "+novc":
			tcp = false
		case a == "+search":
			search = true
		case a == "+short":
			short = true
		case strings.HasPrefix(a, "+"):
		case a == "-x":
			v, err := needArg(args, &i)
			if err != nil {
				return err
			}
			name, typ = v, "PTR"
		case strings.HasPrefix(a, "@"):
			return badFlag(a)
		case strings.HasPrefix(a, "-"):
			return badFlag(a)
		case name == "":
			name = a
		default:
			typ = strings.ToUpper(a)
		}
	}
	if name == "" {
		return usage("no name")
	}
	r := &net.Resolver{PreferGo: true}
	if tcp {
		r.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	q := name
	if !search && !strings.HasSuffix(q, ".") && typ != "PTR" {
		q += "."
	}
	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	line := func(v string) {
		if short {
			fmt.Fprintln(e.stdout, v)
		} else {
			fmt.Fprintf(e.stdout, "%s\t30\tIN\t%s\t%s\n", fqdn(name), typ, v)
		}
	}
	switch typ {
	case "A", "AAAA":
		ips, err := r.LookupIP(ctx, map[string]string{"A": "ip4", "AAAA": "ip6"}[typ], q)
		if err != nil {
			return nil
		}
		for _, ip := range ips {
			line(ip.String())
		}
	case "SRV":
		_, srvs, err := r.LookupSRV(ctx, "", "", q)
		if err != nil {
			return nil
		}
		for _, s := range srvs {
			line(fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
		}
	case "CNAME":
		cname, err := r.LookupCNAME(ctx, q)
		if err != nil || cname == "" || cname == fqdn(name) {
			return nil // no CNAME record: dig prints nothing
		}
		line(cname)
	case "PTR":
		names, err := r.LookupAddr(ctx, arpaAddr(name))
		if err != nil {
			return nil
		}
		for _, n := range names {
			line(n)
		}
	default:
		return usage("unsupported query type " + typ)
	}
	return nil
}

// runNslookup is `nslookup NAME` as the Services specs run it (ExternalName checks): the name
// through the pod's resolv.conf (search list, CNAMEs followed), "Name:" and one "Address:" line
// per address, exit 1 when it does not resolve (as busybox's nslookup).
func runNslookup(e env, args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usage("want: nslookup NAME")
	}
	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	r := &net.Resolver{PreferGo: true}
	addrs, err := r.LookupHost(ctx, args[0])
	if err != nil || len(addrs) == 0 {
		fmt.Fprintf(e.stderr, "** server can't find %s: NXDOMAIN\n", args[0])
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "Name:\t%s\n", args[0])
	for _, a := range addrs {
		fmt.Fprintf(e.stdout, "Address: %s\n", a)
	}
	return nil
}

// arpaAddr turns a reverse name ("4.3.2.1.in-addr.arpa.", as the DNS specs query PTR) into
// the address LookupAddr takes ("1.2.3.4"); anything else is returned as it is.
func arpaAddr(name string) string {
	rest, ok := strings.CutSuffix(strings.TrimSuffix(name, "."), ".in-addr.arpa")
	if !ok {
		return name
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return name
	}
	return parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0]
}

func fqdn(n string) string {
	if strings.HasSuffix(n, ".") {
		return n
	}
	return n + "."
}
