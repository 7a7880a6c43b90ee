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
