package agent

import (
	"context"
	"time"
)

// deleteOnTerminationRetry is how long after a failed attempt DeleteOnTermination is set again.
const deleteOnTerminationRetry = time.Minute

// ensureDeleteOnTerminationLocked sets DeleteOnTermination on every attached secondary ENI of
// ours that EC2 shows without it (issue 11 fault 7): one whose attach-time call failed, one
// re-attached, or one attached by an older vpcnet. Each is one background action, retried at
// most every deleteOnTerminationRetry. Run after each Describe is applied.
func (a *Agent) ensureDeleteOnTerminationLocked(ctx context.Context) {
	now := time.Now()
	if a.st.dotTried == nil {
		a.st.dotTried = map[string]time.Time{}
	}
	for id, e := range a.st.enis {
		if e.DeviceIndex == 0 || e.Unmanaged || !e.Ours() || e.AttachmentID == "" || e.DeleteOnTermination ||
			a.isLost(id) || a.st.pending.Busy[id] || now.Sub(a.st.dotTried[id]) < deleteOnTerminationRetry {
			continue
		}
		a.st.dotTried[id] = now
		a.st.pending.Busy[id] = true
		// Not an action of the pool (a.run): a refusal here must not stall growth or say the
		// cloud is unreachable; it is logged and tried again later.
		go func() {
			err := a.cloud.SetDeleteOnTermination(ctx, e)
			a.mu.Lock()
			defer a.poke()
			defer a.mu.Unlock()
			delete(a.st.pending.Busy, id)
			if cur, ok := a.st.enis[id]; ok && err == nil && cur.AttachmentID == e.AttachmentID {
				cur.DeleteOnTermination = true
				a.st.enis[id] = cur
				delete(a.st.dotTried, id)
			}
			if err != nil {
				a.log.Warn("ENI not set to be deleted with the instance; retrying later", "eni", id, "err", err)
			}
		}()
	}
}
