package vpcsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vpcnet/vpcnet/internal/vpcsim/auth"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// Credentials is an AWS access key pair.
type Credentials = auth.Credentials

// DefaultInstanceRole is the role name IMDS shows when Options.InstanceRole is empty.
const DefaultInstanceRole = "vpcsim-node"

// DefaultRoleCredentialTTL is how long role credentials stay valid, as EC2's instance roles.
const DefaultRoleCredentialTTL = 6 * time.Hour

// DefaultIMDSHopLimit is EC2's default HttpPutResponseHopLimit.
const DefaultIMDSHopLimit = 1

// roleActions are what an instance's role credentials may call: the EC2 actions of
// AWS's AmazonEKS_CNI_Policy. Anything else answers UnauthorizedOperation, as EC2 does for a
// node role without it.
var roleActions = map[string]bool{
	"AssignPrivateIpAddresses": true, "AttachNetworkInterface": true, "CreateNetworkInterface": true,
	"DeleteNetworkInterface": true, "DescribeInstances": true, "DescribeTags": true,
	"DescribeNetworkInterfaces": true, "DescribeInstanceTypes": true, "DescribeSubnets": true,
	"DetachNetworkInterface": true, "ModifyNetworkInterfaceAttribute": true,
	"UnassignPrivateIpAddresses": true, "CreateTags": true,
}

// callerInstance prefixes the caller name Authenticate gives role credentials.
const callerInstance = "instance/"

func (s *Server) configureAuth(opts Options) error {
	var err error
	if opts.StateDir != "" {
		s.auth, err = auth.LoadOrCreate(opts.StateDir, opts.Operator)
	} else {
		s.auth, err = auth.NewKeys(opts.Operator)
	}
	if err != nil {
		return fmt.Errorf("vpcsim: credentials: %w", err)
	}
	s.role = opts.InstanceRole
	if s.role == "" {
		s.role = DefaultInstanceRole
	}
	s.roleTTL = opts.RoleCredentialTTL
	if s.roleTTL <= 0 {
		s.roleTTL = DefaultRoleCredentialTTL
	}
	s.hopLimit = opts.IMDSHopLimit
	if s.hopLimit <= 0 {
		s.hopLimit = DefaultIMDSHopLimit
	}
	if s.hopLimit > 64 {
		return fmt.Errorf("vpcsim: IMDS hop limit %d: EC2 allows 1 to 64", s.hopLimit)
	}
	if opts.CredentialsFile != "" {
		if err := auth.WriteFileAtomic(opts.CredentialsFile, s.auth.SharedCredentialsFile()); err != nil {
			return fmt.Errorf("vpcsim: credentials file: %w", err)
		}
	}
	return nil
}

// OperatorCredentials is the operator's access key pair.
func (s *Server) OperatorCredentials() Credentials { return s.auth.Operator }

// CredentialsProvider gives the operator credential to an aws-sdk-go-v2 client.
func (s *Server) CredentialsProvider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.auth.Operator.AccessKeyID, s.auth.Operator.SecretAccessKey, "")
}

// InstanceRole is the role name IMDS serves credentials under.
func (s *Server) InstanceRole() string { return s.role }

// Authenticate checks a request's SigV4 signature against the credentials vpcsim issued. It
// implements ec2api.Authenticator.
func (s *Server) Authenticate(r *http.Request, body []byte) (string, error) {
	c, err := s.auth.Verify(r, body, s.m.Region(), time.Now())
	if err != nil {
		return "", err
	}
	if c.Operator() {
		return "operator", nil
	}
	if session, ok := strings.CutPrefix(c.InstanceID, auth.WebIdentityPrefix); ok {
		return callerWebIdentity + session, nil
	}
	return callerInstance + c.InstanceID, nil
}

// permitted answers UnauthorizedOperation for an action the caller's role does not allow.
func (s *Server) permitted(action, caller string) error {
	if session, ok := strings.CutPrefix(caller, callerWebIdentity); ok { // ROLE/SESSION
		if roleActions[action] {
			return nil
		}
		return model.Errf(model.CodeUnauthorizedOperation, "You are not authorized to perform this operation. User: arn:aws:sts::%s:assumed-role/%s is not authorized to perform: ec2:%s",
			model.OwnerID, session, action)
	}
	id, isRole := strings.CutPrefix(caller, callerInstance)
	if !isRole || roleActions[action] {
		return nil
	}
	return model.Errf(model.CodeUnauthorizedOperation, "You are not authorized to perform this operation. User: arn:aws:sts::%s:assumed-role/%s/%s is not authorized to perform: ec2:%s",
		model.OwnerID, s.role, id, action)
}
