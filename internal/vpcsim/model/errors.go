package model

import (
	"fmt"
	"net/http"
)

// Error is an EC2 API error: a code the SDKs switch on, EC2's message wording and the HTTP
// status the Query protocol answers with.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes vpcsim answers with. Their messages follow EC2's wording.
const (
	CodeInsufficientFreeAddresses  = "InsufficientFreeAddressesInSubnet"
	CodeInsufficientCidrBlocks     = "InsufficientCidrBlocks"
	CodePrivateIPLimitExceeded     = "PrivateIpAddressLimitExceeded"
	CodeAttachmentLimitExceeded    = "AttachmentLimitExceeded"
	CodeENINotFound                = "InvalidNetworkInterfaceID.NotFound"
	CodeENIMalformed               = "InvalidNetworkInterfaceID.Malformed"
	CodeSubnetNotFound             = "InvalidSubnetID.NotFound"
	CodeSubnetMalformed            = "InvalidSubnetID.Malformed"
	CodeInstanceNotFound           = "InvalidInstanceID.NotFound"
	CodeInstanceMalformed          = "InvalidInstanceID.Malformed"
	CodeVPCNotFound                = "InvalidVpcID.NotFound"
	CodeVPCMalformed               = "InvalidVpcID.Malformed"
	CodeAttachmentNotFound         = "InvalidAttachmentID.NotFound"
	CodeInvalidParameterValue      = "InvalidParameterValue"
	CodeMissingParameter           = "MissingParameter"
	CodeInvalidParameterCombo      = "InvalidParameterCombination"
	CodeSubnetConflict             = "InvalidSubnet.Conflict"
	CodeSubnetRange                = "InvalidSubnet.Range"
	CodeVPCRange                   = "InvalidVpc.Range"
	CodeIPInUse                    = "InvalidIPAddress.InUse"
	CodeENIInUse                   = "InvalidNetworkInterface.InUse"
	CodeIncorrectInstanceState     = "IncorrectInstanceState"
	CodeOperationNotPermitted      = "OperationNotPermitted"
	CodeDependencyViolation        = "DependencyViolation"
	CodeTagLimitExceeded           = "TagLimitExceeded"
	CodeInvalidInstanceType        = "InvalidInstanceType"
	CodeRequestLimitExceeded       = "RequestLimitExceeded"
	CodeUnauthorizedOperation      = "UnauthorizedOperation"
	CodeInternalError              = "InternalError"
	CodeInvalidAction              = "InvalidAction"
	CodeInvalidQueryParameter      = "InvalidQueryParameter"
	CodeMalformedQueryString       = "MalformedQueryString"
	CodeUnknownParameter           = "UnknownParameter"
	CodeNoSuchVersion              = "NoSuchVersion"
	CodeInvalidPaginationToken     = "InvalidPaginationToken"
	CodeInvalidFilter              = "InvalidFilter"
	CodeInvalidNetworkInterfaceAtt = "InvalidNetworkInterfaceAttachmentId.Malformed"
	CodeSecurityGroupsPerENI       = "SecurityGroupsPerInterfaceLimitExceeded"
	CodeGroupMalformed             = "InvalidGroupId.Malformed"
)

// Errf builds a client error (HTTP 400) with the given code.
func Errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: statusOf(code)}
}

func statusOf(code string) int {
	switch code {
	case CodeRequestLimitExceeded:
		return http.StatusServiceUnavailable
	case CodeUnauthorizedOperation:
		return http.StatusForbidden
	case CodeInternalError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// InvalidValue is EC2's InvalidParameterValue for one parameter.
func InvalidValue(param, value string) *Error {
	return Errf(CodeInvalidParameterValue, "Invalid value '%s' for %s", value, param)
}

// Missing is EC2's MissingParameter.
func Missing(param string) *Error {
	return Errf(CodeMissingParameter, "The request must contain the parameter %s", param)
}

// Combination is EC2's InvalidParameterCombination.
func Combination(format string, args ...any) *Error {
	return Errf(CodeInvalidParameterCombo, format, args...)
}

// Throttled is EC2's throttling answer.
func Throttled() *Error { return Errf(CodeRequestLimitExceeded, "Request limit exceeded.") }

// Unauthorized is EC2's answer to a caller without permission for the action.
func Unauthorized() *Error {
	return Errf(CodeUnauthorizedOperation, "You are not authorized to perform this operation.")
}

// Internal is EC2's answer to a fault on its side.
func Internal() *Error {
	return Errf(CodeInternalError, "An internal error has occurred")
}

func notFound(kind, id string) *Error {
	switch kind {
	case "eni":
		return Errf(CodeENINotFound, "The networkInterface ID '%s' does not exist", id)
	case "subnet":
		return Errf(CodeSubnetNotFound, "The subnet ID '%s' does not exist", id)
	case "instance":
		return Errf(CodeInstanceNotFound, "The instance ID '%s' does not exist", id)
	case "vpc":
		return Errf(CodeVPCNotFound, "The vpc ID '%s' does not exist", id)
	case "attachment":
		return Errf(CodeAttachmentNotFound, "The attachment ID '%s' does not exist", id)
	}
	return Errf(CodeInvalidParameterValue, "The ID '%s' does not exist", id)
}

func malformed(kind, id string) *Error {
	prefix := idPrefix[kind]
	code := map[string]string{"eni": CodeENIMalformed, "subnet": CodeSubnetMalformed, "instance": CodeInstanceMalformed,
		"vpc": CodeVPCMalformed, "attachment": CodeInvalidNetworkInterfaceAtt}[kind]
	if code == "" {
		code = CodeInvalidParameterValue
	}
	return Errf(code, "Invalid id: \"%s\" (expecting \"%s...\")", id, prefix)
}
