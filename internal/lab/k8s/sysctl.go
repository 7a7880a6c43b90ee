package k8s

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// KubeletSysctls are the machine-wide settings kubelet changes at start (protectKernelDefaults
// off): vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1. The lab records
// their values before the first kubelet of any lab starts and puts them back when the last lab
// cluster on the machine goes down.
var KubeletSysctls = []string{"vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops"}

// SysctlRecord is the machine-wide record: the values before any lab kubelet, and the labs
// that hold it. It lives outside any lab's directory because the settings are the machine's.
var SysctlRecord = "/run/vpcnet/k8s-sysctls.json"

type sysctlRecord struct {
	Saved map[string]string `json:"saved"`
	Labs  []string          `json:"labs"`
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// ReadSysctl returns a setting's current value.
func ReadSysctl(name string) (string, error) {
	b, err := os.ReadFile(sysctlPath(name))
	return strings.TrimSpace(string(b)), err
}

// withSysctlRecord runs fn on the record under an exclusive lock and writes it back (or
// removes it when no lab holds it).
func withSysctlRecord(fn func(r *sysctlRecord) error) error {
	if err := os.MkdirAll(filepath.Dir(SysctlRecord), 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(SysctlRecord+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	var r sysctlRecord
	if b, err := os.ReadFile(SysctlRecord); err == nil {
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", SysctlRecord, err)
		}
	}
	if err := fn(&r); err != nil {
		return err
	}
	if len(r.Labs) == 0 {
		if err := os.Remove(SysctlRecord); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, _ := json.Marshal(r)
	tmp := SysctlRecord + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, SysctlRecord)
}

// holdSysctls records the kubelet settings (first holder only) and adds lab as a holder.
func holdSysctls(lab string) error {
	return withSysctlRecord(func(r *sysctlRecord) error {
		if len(r.Labs) == 0 || r.Saved == nil {
			r.Saved = map[string]string{}
			for _, s := range KubeletSysctls {
				v, err := ReadSysctl(s)
				if err != nil {
					return err
				}
				r.Saved[s] = v
			}
		}
		if !slices.Contains(r.Labs, lab) {
			r.Labs = append(r.Labs, lab)
		}
		return nil
	})
}

// releaseSysctls removes lab as a holder; the last holder writes the recorded values back.
// Labs in alive say which holders still run: a holder whose lab is gone (a crash) is dropped.
func releaseSysctls(lab string, alive func(string) bool) error {
	return withSysctlRecord(func(r *sysctlRecord) error {
		var keep []string
		for _, l := range r.Labs {
			if l != lab && alive(l) {
				keep = append(keep, l)
			}
		}
		r.Labs = keep
		if len(keep) > 0 || r.Saved == nil {
			return nil
		}
		var errs []error
		for _, s := range KubeletSysctls {
			if v, ok := r.Saved[s]; ok {
				errs = append(errs, os.WriteFile(sysctlPath(s), []byte(v), 0o644))
			}
		}
		return errors.Join(errs...)
	})
}
