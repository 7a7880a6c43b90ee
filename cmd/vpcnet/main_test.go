package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// This file is shared by the tests of every vpcnet command: use vpcnet() to run the real CLI,
// and keep this the package's only TestMain.

// TestMain lets the test binary stand in for vpcnet: run with VPCNET_TEST_AS_CLI=1 it runs main,
// so the tests see the real exit codes and output streams.
func TestMain(m *testing.M) {
	if os.Getenv("VPCNET_TEST_AS_CLI") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// vpcnet runs the CLI in a child process and returns stdout, stderr and the exit code.
func vpcnet(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VPCNET_TEST_AS_CLI=1", catalog.EnvInstanceTypes+"=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}
