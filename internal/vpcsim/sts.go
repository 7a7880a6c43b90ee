package vpcsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/auth"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// STS: the one action a node agent with IAM roles for service accounts (IRSA) calls,
// AssumeRoleWithWebIdentity, at STSEndpoint. vpcsim is also the cluster's OIDC issuer: it
// accepts the tokens WebIdentityToken issues, for any role of its account
// (arn:aws:iam::OWNER:role/NAME), and the credentials it answers with sign EC2 calls with the
// rights of AmazonEKS_CNI_Policy, as an instance role's do. As STS, the call is not signed.

// stsPath is where STS is served on vpcsim's listener.
const stsPath = "/sts/"

// stsNamespace is STS's XML namespace (API version 2011-06-15).
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// callerWebIdentity prefixes the caller name Authenticate gives web-identity credentials.
const callerWebIdentity = "web-identity/"

// STSEndpoint is the URL of vpcsim's STS, for AWS_ENDPOINT_URL_STS.
func (s *Server) STSEndpoint() string { return s.Endpoint() + strings.TrimSuffix(stsPath, "/") }

// WebIdentityToken returns a token for subject (e.g. "system:serviceaccount:kube-system:vpcnet")
// that AssumeRoleWithWebIdentity accepts, as the projected service account token of IRSA.
func (s *Server) WebIdentityToken(subject string) string { return s.auth.WebIdentityToken(subject) }

// stsError is an STS error answer: its code, HTTP status and message, as STS words them.
type stsError struct {
	code   string
	status int
	msg    string
}

func stsValidation(format string, args ...any) *stsError {
	return &stsError{"ValidationError", http.StatusBadRequest, "1 validation error detected: " + fmt.Sprintf(format, args...)}
}

// iamName reports whether s is an IAM role or session name: min to max of [\w+=,.@-].
func iamName(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+=,.@-", c)) {
			return false
		}
	}
	return true
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		SubjectFromWebIdentityToken string
		Audience                    string
		AssumedRoleUser             struct{ Arn, AssumedRoleId string }
		Credentials                 stsCredentials
		Provider                    string
	} `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

// serveSTS answers AssumeRoleWithWebIdentity (POST form or GET query); every other action is
// InvalidAction.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	reqID := fmt.Sprintf("%016x", time.Now().UnixNano())
	reply := func(status int, v any) {
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if err := xml.NewEncoder(&buf).Encode(v); err != nil {
			status = http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("x-amzn-RequestId", reqID)
		w.WriteHeader(status)
		w.Write(buf.Bytes())
	}
	fail := func(e *stsError) {
		out := stsErrorResponse{Xmlns: stsNamespace, RequestID: reqID}
		out.Error.Type, out.Error.Code, out.Error.Message = "Sender", e.code, e.msg
		reply(e.status, out)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		fail(&stsError{"InvalidAction", http.StatusBadRequest, "Method " + r.Method + " is not supported; use POST."})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		fail(&stsError{"ValidationError", http.StatusBadRequest, "The request body could not be read or is larger than 64 KiB."})
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			fail(&stsError{"MalformedQueryString", http.StatusBadRequest, err.Error()})
			return
		}
		for k, v := range form {
			q[k] = append(q[k], v...)
		}
	}
	out, e := s.assumeRoleWithWebIdentity(q.Get("Action"), q.Get("RoleArn"), q.Get("RoleSessionName"), q.Get("WebIdentityToken"), q.Get("DurationSeconds"), time.Now())
	if e != nil {
		s.log.Debug("sts: error", "code", e.code, "msg", e.msg)
		fail(e)
		return
	}
	out.RequestID = reqID
	reply(http.StatusOK, out)
}

// assumeRoleWithWebIdentity checks one request, in STS's order (action, parameters, token,
// role), and issues the session's credentials.
func (s *Server) assumeRoleWithWebIdentity(action, roleARN, session, token, duration string, now time.Time) (*assumeRoleWithWebIdentityResponse, *stsError) {
	if action != "AssumeRoleWithWebIdentity" {
		return nil, &stsError{"InvalidAction", http.StatusBadRequest, fmt.Sprintf("Could not find operation %q for version 2011-06-15", action)}
	}
	if len(roleARN) < 20 || len(roleARN) > 2048 {
		return nil, stsValidation("Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048")
	}
	if !iamName(session, 2, 64) {
		return nil, stsValidation("Value at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*")
	}
	if len(token) < 4 || len(token) > 20000 {
		return nil, stsValidation("Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
	}
	ttl := time.Hour
	if duration != "" {
		n, err := strconv.Atoi(duration)
		if err != nil || n < 900 || n > 43200 {
			return nil, stsValidation("Value %q at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", duration)
		}
		ttl = time.Duration(n) * time.Second
	}
	subject, err := s.auth.WebIdentitySubject(token)
	if err != nil {
		return nil, &stsError{"InvalidIdentityToken", http.StatusBadRequest, "Couldn't retrieve verification key from your identity provider: " + err.Error()}
	}
	role, ok := strings.CutPrefix(roleARN, "arn:aws:iam::"+model.OwnerID+":role/")
	if i := strings.LastIndexByte(role, '/'); ok && i >= 0 {
		role = role[i+1:] // a role's path
	}
	if !ok || !iamName(role, 1, 64) {
		return nil, &stsError{"AccessDenied", http.StatusForbidden, "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	c := s.auth.Role(auth.WebIdentityPrefix+role+"/"+session, now, ttl)
	out := &assumeRoleWithWebIdentityResponse{Xmlns: stsNamespace}
	out.Result.SubjectFromWebIdentityToken = subject
	out.Result.Audience = "sts.amazonaws.com"
	out.Result.Provider = "vpcsim"
	out.Result.AssumedRoleUser.Arn = "arn:aws:sts::" + model.OwnerID + ":assumed-role/" + role + "/" + session
	out.Result.AssumedRoleUser.AssumedRoleId = "AROAVPCSIM:" + session
	out.Result.Credentials = stsCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: c.Expiration.UTC().Format(time.RFC3339)}
	return out, nil
}
