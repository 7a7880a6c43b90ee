package lab

import (
	"strings"
	"testing"
)

// TestAgentModeValidate: --agent daemonset needs the Kubernetes runtime (kubelet runs the
// DaemonSet); an unknown mode is refused with the choices; the default stays supervised.
func TestAgentModeValidate(t *testing.T) {
	// internal/lab/k8s registers "kubernetes"; this package's tests do not import it.
	if _, ok := runtimes["kubernetes"]; !ok {
		runtimes["kubernetes"] = nil
		t.Cleanup(func() { delete(runtimes, "kubernetes") })
	}
	for _, c := range []struct {
		runtime, mode, err string
		ds                 bool
	}{
		{"", "", "", false},
		{"kubernetes", "", "", false},
		{"kubernetes", AgentSupervised, "", false},
		{"kubernetes", AgentDaemonSet, "", true},
		{RuntimeNone, AgentDaemonSet, "needs --runtime kubernetes", true},
		{"kubernetes", "sidecar", `--agent "sidecar": want supervised or daemonset`, false},
	} {
		cfg := DefaultConfig("am")
		cfg.Runtime, cfg.AgentMode = c.runtime, c.mode
		err := cfg.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("runtime %q agent %q: %v, want %q", c.runtime, c.mode, err, c.err)
		}
		if cfg.DaemonSetAgent() != c.ds {
			t.Errorf("agent %q: DaemonSetAgent %v", c.mode, !c.ds)
		}
	}
	// A deferred install (the demo's `kubectl apply` after the nodes) is of the DaemonSet only.
	for mode, want := range map[string]string{AgentDaemonSet: "", AgentSupervised: "needs --agent daemonset", "": "needs --agent daemonset"} {
		cfg := DefaultConfig("am")
		cfg.Runtime, cfg.AgentMode, cfg.DeferAgentInstall = "kubernetes", mode, true
		err := cfg.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("deferred install with agent %q: %v, want %q", mode, err, want)
		}
	}
}
