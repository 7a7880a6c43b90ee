package agent

import (
	"github.com/vpcnet/vpcnet/internal/cloud"
)

// cloudFailure is the status reason and message for a cloud call that failed, prefixed with
// what the node cannot do meanwhile. A refused permission or refused credentials
// (cloud.KindUnauthorized, cloud.KindAuthFailure) is cloud-unauthorized, naming the EC2 action
// and the IAM permission it needs: retrying will not help until an operator acts. Everything
// else (transport failures, 5xx and throttling after the retries) is cloud-unreachable.
func cloudFailure(prefix string, err error) (reason, message string) {
	switch cloud.KindOf(err) {
	case cloud.KindUnauthorized, cloud.KindAuthFailure:
		return ReasonCloudUnauthorized, prefix + cloud.Explain(err)
	}
	return ReasonCloudUnreachable, prefix + "cannot reach the cloud: " + err.Error()
}
