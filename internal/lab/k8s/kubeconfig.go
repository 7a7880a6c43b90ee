package k8s

import (
	"encoding/base64"
	"encoding/json"
	"os"
)

// writeKubeconfig writes a kubeconfig (JSON is valid YAML) for one user with a client
// certificate, trusting the cluster CA.
func writeKubeconfig(path, server, caPath, certPath, keyPath, user string) error {
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "lab", "cluster": map[string]any{
			"server": server, "certificate-authority-data": base64.StdEncoding.EncodeToString(caPEM)}}},
		"users": []any{map[string]any{"name": user, "user": map[string]any{
			"client-certificate": certPath, "client-key": keyPath}}},
		"contexts":        []any{map[string]any{"name": "lab", "context": map[string]any{"cluster": "lab", "user": user}}},
		"current-context": "lab",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}
