package lab

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2Client returns an EC2 API client of the lab's vpcsim that reaches it through the lab's
// EC2 unix socket, so nothing is added to the root namespace for it. It signs with the
// operator credential the controller's vpcsim wrote (Paths.OperatorCredentials).
func EC2Client(name string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://vpcsim.lab"),
		Credentials:  aws.NewCredentialsCache(operatorCredentials(PathsFor(name).OperatorCredentials())),
		HTTPClient:   unixHTTP(PathsFor(name).EC2Socket()),
	})
}

// operatorCredentials reads profile "default" of the shared credentials file at path.
func operatorCredentials(path string) aws.CredentialsProviderFunc {
	return func(ctx context.Context) (aws.Credentials, error) {
		cfg, err := config.LoadSharedConfigProfile(ctx, "default", func(o *config.LoadSharedConfigOptions) {
			o.CredentialsFiles = []string{path}
			o.ConfigFiles = []string{}
		})
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("lab operator credentials: %w", err)
		}
		return cfg.Credentials, nil
	}
}
