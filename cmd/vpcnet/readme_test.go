package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/testenv"
)

// TestREADMEPlanExamples runs every `$ vpcnet plan ...` example in README.md and checks that the
// README shows exactly what the command prints (stdout and stderr together, as a terminal would).
func TestREADMEPlanExamples(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := 0
	for _, block := range strings.Split(string(readme), "```console\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		// Each `$ ` line is a command; the lines up to the next one are its output.
		for _, ex := range strings.Split(block, "$ ")[1:] {
			cmdLine, want, _ := strings.Cut(ex, "\n")
			args := strings.Fields(cmdLine)
			if len(args) < 2 || args[0] != "vpcnet" || args[1] != "plan" {
				continue
			}
			examples++
			out, errOut, _ := vpcnet(t, nil, args[1:]...)
			if got := out + errOut; got != want {
				t.Errorf("README shows for %q:\n%s\nthe command prints:\n%s", cmdLine, want, got)
			}
		}
	}
	if examples < 4 {
		t.Fatalf("found %d vpcnet plan examples in README.md; expected at least 4", examples)
	}
}
