package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Config says how to reach the cloud. Zero values take the defaults shown.
type Config struct {
	EC2Endpoint  string        // "": AWS_EC2_ENDPOINT, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, else AWS
	IMDSEndpoint string        // "": AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254
	Region       string        // "": AWS_REGION, else from IMDS
	Cluster      string        // value of the vpcnet.io/cluster-name tag on ENIs we create
	RatePerSec   float64       // client-side limit on EC2 attempts per second (10)
	Burst        int           // (20)
	MaxAttempts  int           // per call, the first included (10)
	MaxBackoff   time.Duration // between attempts, jittered (20s)
	CacheTTL     time.Duration // how long a Describe answer serves (2s)
	AttachWait   time.Duration // how long to wait for an attachment to complete (60s)
	Observer     Observer      `json:"-"`

	transport func(*http.Transport) // tests: adjusts the HTTP transport
}

// EndpointFromEnv returns the EC2 endpoint the environment names, or "" for AWS's own.
func EndpointFromEnv() string {
	for _, k := range []string{"AWS_EC2_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Client is Cloud over aws-sdk-go-v2.
type Client struct {
	cfg     Config
	ec2     *ec2.Client
	imds    *imds.Client
	limiter *rate.Limiter
	flight  singleflight.Group
	source  CredentialSource

	mu      sync.Mutex
	enis    map[string]cachedENIs // by instance ID
	gen     int                   // bumped by every change we make, so a stale answer is not cached
	subnets map[string]cachedFree
	limits  map[string]Limits
}

type cachedENIs struct {
	at   time.Time
	enis []ENI
}

type cachedFree struct {
	at   time.Time
	free int
}

// New builds a client. It does not call the cloud.
func New(ctx context.Context, c Config) (*Client, error) {
	if c.EC2Endpoint == "" {
		c.EC2Endpoint = EndpointFromEnv()
	}
	if c.IMDSEndpoint == "" {
		c.IMDSEndpoint = os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if c.Region == "" {
		c.Region = os.Getenv("AWS_REGION")
	}
	c.RatePerSec = or(c.RatePerSec, 10)
	c.Burst = or(c.Burst, 20)
	c.MaxAttempts = or(c.MaxAttempts, 10)
	c.MaxBackoff = or(c.MaxBackoff, 20*time.Second)
	c.CacheTTL = or(c.CacheTTL, 2*time.Second)
	c.AttachWait = or(c.AttachWait, 60*time.Second)
	creds, endpoints, roots, err := readEnvironment(os.Getenv)
	if err != nil {
		return nil, err
	}
	httpClient := awshttp.NewBuildableClient().WithTimeout(30 * time.Second)
	if roots != nil {
		httpClient = httpClient.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.RootCAs = roots
		})
	}
	if c.transport != nil {
		httpClient = httpClient.WithTransportOptions(c.transport)
	}
	cl := &Client{
		cfg:     c,
		limiter: rate.NewLimiter(rate.Limit(c.RatePerSec), c.Burst),
		enis:    map[string]cachedENIs{},
		subnets: map[string]cachedFree{},
		limits:  map[string]Limits{},
	}
	cl.imds = imds.New(imds.Options{Endpoint: c.IMDSEndpoint, HTTPClient: httpClient})
	if c.Region == "" {
		out, err := cl.imds.GetRegion(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("region: AWS_REGION is unset and IMDS did not say: %w", err)
		}
		c.Region = out.Region
		cl.cfg.Region = out.Region
	}
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = c.MaxAttempts
			o.MaxBackoff = c.MaxBackoff
			// Our own limiter paces attempts; the SDK's retry quota would give up under a
			// long throttling spell instead of waiting it out.
			o.RateLimiter = ratelimit.None
		})
	}
	// The SDK's parts, not config.LoadDefaultConfig: its chain links the shared files' SSO,
	// SSO-OIDC and sign-in clients, 2 MiB of vpcnetd's memory (awsenv.go).
	awsCfg := aws.Config{
		Region:      c.Region,
		HTTPClient:  httpClient,
		Retryer:     retryer,
		Credentials: credentialsProvider(creds, c.Region, endpoints, cl.imds, httpClient, retryer),
	}
	cl.source = creds.Source
	cl.ec2 = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if c.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(c.EC2Endpoint)
		}
		o.EndpointOptions.UseFIPSEndpoint, o.EndpointOptions.UseDualStackEndpoint = endpoints.endpointOptions()
		o.HTTPClient = ownBody{o.HTTPClient}
		o.APIOptions = append(o.APIOptions, cl.paceAttempts)
	})
	return cl, nil
}

// CredentialSource says where the client's credentials come from.
func (c *Client) CredentialSource() CredentialSource { return c.source }

// ownBody gives the transport its own copy of each request body. The SDK closes the body it
// built as soon as the answer's headers arrive, and its closed body fails a read with io.EOF
// through WriteTo; when net/http's write loop had sent the body but not yet made its last read
// of it (a busy machine), that read failed, the transport closed the connection under the
// answer being read ("use of closed network connection") and the SDK retried after a jittered
// backoff of up to 2 s. EC2 Query bodies are small forms, so the copy costs nothing.
type ownBody struct {
	c interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (o ownBody) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, fmt.Errorf("request body: %w", err)
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return o.c.Do(r)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// paceAttempts puts the rate limiter in front of every HTTP attempt, retries included.
func (c *Client) paceAttempts(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("vpcnetRateLimit",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := c.limiter.Wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			if c.cfg.Observer.Attempt != nil {
				c.cfg.Observer.Attempt(awsmw.GetOperationName(ctx))
			}
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
}

// observe reports one call to the observer; use as defer c.observe("Action", time.Now(), &err).
func (c *Client) observe(action string, start time.Time, err *error) {
	if c.cfg.Observer.Call != nil {
		c.cfg.Observer.Call(action, time.Since(start), *err)
	}
}

// invalidate drops cached ENI lists and subnet counts after a change.
func (c *Client) invalidate() {
	c.mu.Lock()
	c.enis = map[string]cachedENIs{}
	c.subnets = map[string]cachedFree{}
	c.gen++
	c.mu.Unlock()
}
