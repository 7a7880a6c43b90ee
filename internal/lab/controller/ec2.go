package controller

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const region = "us-east-1"

// newEC2 returns an EC2 client for endpoint that sends through hc and signs with creds (the
// operator credential of the lab's vpcsim).
func newEC2(endpoint string, hc *http.Client, creds aws.CredentialsProvider) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
		HTTPClient:   hc,
	})
}

// createVPC creates the lab's VPC and subnets, one per AZ in turn.
func (c *Controller) createVPC(ctx context.Context) error {
	vpc, err := c.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(c.cfg.VPCCIDR.String()),
		TagSpecifications: tags(types.ResourceTypeVpc, "vpcnet-lab-"+c.cfg.Name)})
	if err != nil {
		return fmt.Errorf("create VPC %s: %w", c.cfg.VPCCIDR, err)
	}
	c.mu.Lock()
	c.vpcID = aws.ToString(vpc.Vpc.VpcId)
	c.mu.Unlock()
	for i, cidr := range c.cfg.Subnets {
		az := fmt.Sprintf("%s%c", region, 'a'+i%3)
		out, err := c.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr.String()),
			AvailabilityZone: aws.String(az), TagSpecifications: tags(types.ResourceTypeSubnet, fmt.Sprintf("vpcnet-lab-%s-%d", c.cfg.Name, i+1))})
		if err != nil {
			return fmt.Errorf("create subnet %s: %w", cidr, err)
		}
		c.mu.Lock()
		c.subnets = append(c.subnets, subnet{ID: aws.ToString(out.Subnet.SubnetId), CIDR: cidr, AZ: az})
		c.mu.Unlock()
	}
	return nil
}

func tags(rt types.ResourceType, name string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: rt, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}}
}
