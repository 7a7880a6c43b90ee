package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// runSh is `sh [-e] [-x] [-u] -c SCRIPT [NAME [ARG...]]`, `sh FILE [ARG...]` or `sh` reading
// the script from stdin. Our commands run in process; anything else (/agnhost ...) is executed.
func runSh(e env, args []string) error {
	var opts []string
	script, name, haveC := "", "sh", false
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		for _, f := range a[1:] {
			switch f {
			case 'c':
				haveC = true
			case 'e', 'x', 'u', 'f':
				opts = append(opts, "-"+string(f))
			default:
				return badFlag("-" + string(f))
			}
		}
	}
	rest := args[i:]
	var src io.Reader
	switch {
	case haveC:
		if len(rest) == 0 {
			return usage("-c needs a script")
		}
		script, rest = rest[0], rest[1:]
		if len(rest) > 0 {
			name, rest = rest[0], rest[1:]
		}
		src = strings.NewReader(script)
	case len(rest) > 0:
		b, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		name, rest = rest[0], rest[1:]
		src = strings.NewReader(string(b))
	default:
		src = e.stdin
	}
	file, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		return err
	}
	r, err := interp.New(interp.StdIO(e.stdin, e.stdout, e.stderr),
		interp.Params(append(opts, append([]string{"--"}, rest...)...)...),
		interp.ExecHandlers(func(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
			return func(ctx context.Context, argv []string) error {
				cmd, ok := commands[baseName(argv[0])]
				if !ok {
					return next(ctx, argv)
				}
				hc := interp.HandlerCtx(ctx)
				sub := env{ctx: ctx, stdin: hc.Stdin, stdout: hc.Stdout, stderr: hc.Stderr,
					getenv: func(k string) string { return hc.Env.Get(k).String() }}
				if hc.Stdin == nil {
					sub.stdin = strings.NewReader("")
				}
				if st := status(cmd(sub, argv[1:]), argv[0], hc.Stderr); st != 0 {
					return interp.ExitStatus(st)
				}
				return nil
			}
		}))
	if err != nil {
		return err
	}
	err = r.Run(e.ctx, file)
	var st interp.ExitStatus
	if errors.As(err, &st) {
		return exitCode(st)
	}
	return err
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
