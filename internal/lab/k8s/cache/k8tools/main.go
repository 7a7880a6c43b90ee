// Command k8tools is one static program standing in for the busybox and alpine commands the
// Kubernetes e2e framework execs inside agnhost-based pods: sh (the mvdan.cc/sh interpreter;
// every command below runs inside it without a new process), curl, nc, grep, cat, sleep, seq,
// hostname, dig, getent, wget and timeout. It picks the command from the name it runs under
// (the image holds one copy per name in /bin) or from its first argument (`k8tools curl ...`).
//
// Only the flags the e2e specs use are understood; any other flag is an error (exit 2) naming
// it, so a spec that needs more fails loudly instead of passing by accident.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// env is what one command runs with: its stdio and the interpreter's environment.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// exitCode is returned by a command that ends with a status other than 0.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type command func(e env, args []string) error

var commands map[string]command

func init() {
	commands = map[string]command{
		"sh": runSh, "ash": runSh, "bash": runSh,
		"curl": runCurl, "wget": runWget, "nc": runNc, "grep": runGrep, "cat": runCat,
		"sleep": runSleep, "seq": runSeq, "hostname": runHostname, "dig": runDig,
		"getent": runGetent, "nslookup": runNslookup, "timeout": runTimeout, "true": func(env, []string) error { return nil },
		"false": func(env, []string) error { return exitCode(1) },
	}
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "k8tools" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "k8tools: unknown command %q\n", name)
		os.Exit(127)
	}
	e := env{ctx: context.Background(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(status(cmd(e, args), name, os.Stderr))
}

// status turns a command's error into an exit status, printing it unless it is a bare status.
func status(err error, name string, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if c, ok := err.(exitCode); ok {
		return int(c)
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if u, ok := err.(usage); ok {
		_ = u
		return 2
	}
	return 1
}

// usage is a bad-flag error (exit 2).
type usage string

func (u usage) Error() string { return string(u) }

func badFlag(f string) error { return usage("unsupported flag " + f) }

// needArg takes the value of a flag that has one.
func needArg(args []string, i *int) (string, error) {
	if *i+1 >= len(args) {
		return "", usage("flag " + args[*i] + " needs a value")
	}
	*i++
	return args[*i], nil
}
