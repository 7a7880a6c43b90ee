package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// Service is the SigV4 signing name of EC2.
const Service = "ec2"

// MaxSkew is how far a request's X-Amz-Date may be from vpcsim's clock (SigV4's 5 minutes).
const MaxSkew = 5 * time.Minute

// EC2's answers to authentication failures (codes, HTTP statuses and wording as EC2's).
func authFailure() *model.Error {
	return &model.Error{Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials", Status: http.StatusUnauthorized}
}

func authFailuref(msg string) *model.Error {
	return &model.Error{Code: "AuthFailure", Message: msg, Status: http.StatusUnauthorized}
}

func signatureMismatch() *model.Error {
	return &model.Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
}

func requestExpired(msg string) *model.Error {
	return &model.Error{Code: "RequestExpired", Message: msg, Status: http.StatusBadRequest}
}

// authHeader is a parsed "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
type authHeader struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

// parseAuthorization parses a SigV4 Authorization header; ok is false for anything else.
func parseAuthorization(h string) (a authHeader, ok bool) {
	rest, found := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !found {
		return a, false
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(rest, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(f), "=")
		if !found || seen[k] {
			return a, false
		}
		seen[k] = true
		switch k {
		case "Credential":
			parts := strings.Split(v, "/")
			if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
				return a, false
			}
			a.accessKeyID, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		default:
			return a, false
		}
	}
	if a.accessKeyID == "" || len(a.signedHeaders) == 0 || len(a.signature) != 64 {
		return a, false
	}
	for _, s := range a.signedHeaders {
		if s == "" || s != strings.ToLower(s) {
			return a, false
		}
	}
	return a, true
}

// Verify authenticates an EC2 request whose body has been read into body: the SigV4
// Authorization header must be scoped to region and EC2, dated within MaxSkew of now, made
// with an access key vpcsim issued (with its session token for role credentials) and carry the
// signature aws-sdk-go-v2's signer computes for the same request. Errors, as EC2's:
// MissingParameter (no signature, HTTP 400), AuthFailure (unknown key, bad token or scope, 401),
// SignatureDoesNotMatch (403), RequestExpired (stale date or expired role credentials, 400).
func (k *Keys) Verify(r *http.Request, body []byte, region string, now time.Time) (Caller, *model.Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return Caller{}, authFailuref("Presigned EC2 requests are not supported by vpcsim; sign the Authorization header.")
		}
		return Caller{}, model.Missing("AWSAccessKeyId")
	}
	a, ok := parseAuthorization(h)
	if !ok {
		return Caller{}, authFailuref("The Authorization header is not a valid AWS4-HMAC-SHA256 signature.")
	}
	if a.service != Service || a.region != region {
		return Caller{}, authFailuref("Credential should be scoped to a valid region and to service 'ec2', not '" + a.region + "/" + a.service + "'.")
	}
	signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || a.date != signed.Format("20060102") {
		return Caller{}, authFailuref("The request must carry an X-Amz-Date header that matches its credential scope.")
	}
	if d := now.Sub(signed); d > MaxSkew || d < -MaxSkew {
		return Caller{}, requestExpired("Request has expired. Timestamp date is " + signed.Format(time.RFC3339) + ".")
	}
	creds, caller, aerr := k.lookup(a.accessKeyID, r.Header.Get("X-Amz-Security-Token"), now)
	if aerr != nil {
		return Caller{}, aerr
	}
	if !k.signatureMatches(r, body, a, creds, signed) {
		return Caller{}, signatureMismatch()
	}
	return caller, nil
}

// lookup finds the secret of an access key vpcsim issued.
func (k *Keys) lookup(accessKeyID, token string, now time.Time) (Credentials, Caller, *model.Error) {
	if accessKeyID == k.Operator.AccessKeyID {
		if token != "" {
			return Credentials{}, Caller{}, authFailuref("The security token included in the request is invalid.")
		}
		return k.Operator, Caller{AccessKeyID: accessKeyID}, nil
	}
	if !strings.HasPrefix(accessKeyID, rolePrefix) || token == "" {
		return Credentials{}, Caller{}, authFailure()
	}
	creds, instance, exp, err := k.parseToken(token)
	if err != nil || creds.AccessKeyID != accessKeyID {
		return Credentials{}, Caller{}, authFailuref("The security token included in the request is invalid.")
	}
	if !now.Before(exp) {
		return Credentials{}, Caller{}, requestExpired("Request has expired: the security token expired at " + exp.Format(time.RFC3339) + ".")
	}
	return creds, Caller{AccessKeyID: accessKeyID, InstanceID: instance}, nil
}

// signatureMatches signs a copy of the request holding only the headers the caller signed,
// with aws-sdk-go-v2's signer, and compares the signatures.
func (k *Keys) signatureMatches(r *http.Request, body []byte, a authHeader, creds Credentials, signed time.Time) bool {
	cp, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return false
	}
	cp.Host = r.Host
	for _, name := range a.signedHeaders {
		switch name {
		case "host", "x-amz-date", "x-amz-security-token":
			// The signer sets these itself.
		case "content-length":
			cp.ContentLength = r.ContentLength
		default:
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return false
			}
			cp.Header[textproto.CanonicalMIMEHeaderKey(name)] = vs
		}
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID,
		SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, cp, hex.EncodeToString(sum[:]), Service, a.region, signed)
	if err != nil {
		return false
	}
	got, ok := parseAuthorization(cp.Header.Get("Authorization"))
	if !ok || strings.Join(got.signedHeaders, ";") != strings.Join(a.signedHeaders, ";") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got.signature), []byte(a.signature)) == 1
}
