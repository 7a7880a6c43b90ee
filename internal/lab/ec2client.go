package lab

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2Client returns an EC2 API client of the lab's vpcsim that reaches it through the lab's
// EC2 unix socket, so nothing is added to the root namespace for it.
func EC2Client(name string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://vpcsim.lab"),
		Credentials:  credentials.NewStaticCredentialsProvider("vpcnet-lab", "vpcnet-lab", ""),
		HTTPClient:   unixHTTP(PathsFor(name).EC2Socket()),
	})
}
