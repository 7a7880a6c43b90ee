package dataplane

import (
	"bytes"
	"fmt"
	"os"
)

// setSysctl writes value to /proc/sys/<key> unless it holds it already. Under /proc/sys/net the
// file belongs to the network namespace of the calling thread.
func setSysctl(key, value string) error {
	p := "/proc/sys/" + key
	cur, err := os.ReadFile(p)
	if err == nil && string(bytes.TrimSpace(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// readSysctl reads /proc/sys/<key> in the calling thread's network namespace, trimmed.
func readSysctl(key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(b)), nil
}
