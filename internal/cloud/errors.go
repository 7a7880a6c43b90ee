package cloud

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// Kind is what a failed EC2 call means for the agent, whatever code and message EC2 used to say
// it. Classify is the one place that maps EC2's answers to kinds.
type Kind int

const (
	// KindOther is any failure not listed below: a transport error, a 5xx after the retries, an
	// unknown code. The agent backs off and reports cloud-unreachable.
	KindOther Kind = iota
	// KindSubnetFull: the subnet has fewer free addresses than the request needs.
	KindSubnetFull
	// KindNoCIDRBlocks: a prefix request found no free aligned /28 (a fragmented or full
	// subnet); single addresses may still be free, so prefix mode falls back to them.
	KindNoCIDRBlocks
	// KindUnauthorized: the credentials were accepted but their IAM policy does not allow the
	// action (UnauthorizedOperation).
	KindUnauthorized
	// KindAuthFailure: EC2 did not accept the credentials: missing, unknown, expired, or a bad
	// signature.
	KindAuthFailure
	// KindThrottled: EC2's request rate limit, still hit after the retries.
	KindThrottled
	// KindNotFound: the ENI (or attachment) named does not exist.
	KindNotFound
	// KindInUse: an address or prefix asked for by name is held by another interface
	// (InvalidIPAddress.InUse, or InvalidParameterValue saying it is in use or assigned).
	KindInUse
)

func (k Kind) String() string {
	switch k {
	case KindSubnetFull:
		return "subnet-full"
	case KindNoCIDRBlocks:
		return "no-cidr-blocks"
	case KindUnauthorized:
		return "unauthorized"
	case KindAuthFailure:
		return "auth-failure"
	case KindThrottled:
		return "throttled"
	case KindNotFound:
		return "not-found"
	case KindInUse:
		return "in-use"
	}
	return "other"
}

// ExhaustionMessage is the start of the message with which EC2 answers InvalidParameterValue,
// instead of InsufficientFreeAddressesInSubnet or InsufficientCidrBlocks, when a subnet cannot
// give the addresses or /28 prefixes asked for, on CreateNetworkInterface,
// AttachNetworkInterface and AssignPrivateIpAddresses (AWS support's answer quoted in
// cilium/cilium#31016; users of the AWS VPC CNI report the same in prefix mode).
const ExhaustionMessage = "There aren't sufficient free Ipv4 addresses or prefixes"

// authFailures are the codes with which AWS refuses credentials rather than a permission
// (EC2 API reference, "Common client error codes"; the AWS SDKs' signing errors).
var authFailures = map[string]bool{
	"AuthFailure":                true,
	"InvalidClientTokenId":       true,
	"SignatureDoesNotMatch":      true,
	"IncompleteSignature":        true,
	"MissingAuthenticationToken": true,
	"ExpiredToken":               true,
	"RequestExpired":             true,
	"OptInRequired":              true,
	"Blocked":                    true,
}

// Classify maps an EC2 error code and message to a kind. prefixes says whether the request
// asked for /28 prefixes (Ipv4PrefixCount, or an ENI carrying prefixes being attached): EC2's
// InvalidParameterValue "There aren't sufficient free Ipv4 addresses or prefixes" then means
// no room for a prefix, on which prefix mode falls back to single addresses, and otherwise
// that the subnet is out of addresses.
func Classify(code, message string, prefixes bool) Kind {
	switch {
	case code == ErrSubnetFull:
		return KindSubnetFull
	case code == ErrNoCIDRBlocks:
		return KindNoCIDRBlocks
	case code == ErrInvalidParameter && strings.Contains(strings.ToLower(message), strings.ToLower(ExhaustionMessage)):
		if prefixes {
			return KindNoCIDRBlocks
		}
		return KindSubnetFull
	case code == ErrUnauthorized:
		return KindUnauthorized
	case authFailures[code]:
		return KindAuthFailure
	case code == ErrThrottled:
		return KindThrottled
	case code == ErrENINotFound || code == "InvalidAttachmentID.NotFound":
		return KindNotFound
	case code == "InvalidIPAddress.InUse" || code == "PrivateIpAddressInUse":
		return KindInUse
	case code == ErrInvalidParameter && (strings.Contains(message, "in use") || strings.Contains(message, "already assigned")):
		return KindInUse
	}
	return KindOther
}

// Error is a failed EC2 call: the action, what the failure means, and the SDK's error.
type Error struct {
	Action   string // EC2 action, e.g. AssignPrivateIpAddresses
	Kind     Kind
	Code     string // EC2 error code, "" for a failure without one (transport, credentials)
	Prefixes bool   // the request asked for /28 prefixes
	Err      error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// IAMAction is the IAM permission the call needs, e.g. ec2:AssignPrivateIpAddresses.
func (e *Error) IAMAction() string { return "ec2:" + e.Action }

// classified wraps err from an EC2 action as an *Error; nil stays nil.
func classified(action string, prefixes bool, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	code, msg := Code(err), ""
	var api smithy.APIError
	if errors.As(err, &api) {
		msg = api.ErrorMessage()
	}
	kind := Classify(code, msg, prefixes)
	if isCredentialError(err) {
		// EC2 was not reached: the code, if any, is STS's or the credential endpoint's
		// (InvalidIdentityToken, AccessDenied), not EC2's; Explain still quotes it.
		kind, code = KindAuthFailure, ""
	}
	return &Error{Action: action, Kind: kind, Code: code, Prefixes: prefixes, Err: err}
}

// isCredentialError reports whether the SDK could not get credentials to sign with (the instance
// role's could not be read from IMDS, STS or the container endpoint refused).
func isCredentialError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "failed to refresh cached credentials") ||
		strings.Contains(s, "no EC2 IMDS role found")
}

// KindOf is the kind of a failed call's error: as the client classified it, or from its EC2
// code alone. A nil error has no kind: KindOther is returned, so callers test err first.
func KindOf(err error) Kind {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Kind
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return Classify(api.ErrorCode(), api.ErrorMessage(), false)
	}
	return KindOther
}

// Explain says in one line what a failed call means for the node and what to do, naming the
// EC2 action and, for a refused permission, the IAM permission to grant.
func Explain(err error) string {
	var ce *Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	said := ce.Err.Error() // EC2's own words when it answered, else the SDK's
	var api smithy.APIError
	if errors.As(ce.Err, &api) {
		said = api.ErrorCode() + ": " + api.ErrorMessage()
	}
	switch ce.Kind {
	case KindUnauthorized:
		return fmt.Sprintf("EC2 refused %s (%s): the node's IAM role lacks the permission %s; grant it (AmazonEKS_CNI_Policy has it)",
			ce.Action, said, ce.IAMAction())
	case KindAuthFailure:
		return fmt.Sprintf("EC2 did not accept the node's credentials for %s (%s): check the instance role (IMDS iam/security-credentials), IRSA or Pod Identity, AWS_ACCESS_KEY_ID, and the clock",
			ce.Action, said)
	}
	return ce.Err.Error()
}
