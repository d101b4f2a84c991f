package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrClosed is returned (wrapped) by Write and Check after Close.
var ErrClosed = errors.New("sink is closed")

// errInvalidTopic is a record's error when the topic template expands to a
// name Kafka refuses.
var errInvalidTopic = errors.New("the topic template expands to an invalid topic name (longer than 249 characters, \".\" or \"..\")")

// permanentCodes are broker (or client-side) errors about the record itself:
// sending it again cannot succeed, so it is dead-lettered.
var permanentCodes = []*kerr.Error{
	kerr.MessageTooLarge,       // larger than max_message_bytes or the topic's max.message.bytes
	kerr.RecordListTooLarge,    // likewise, for the whole batch
	kerr.InvalidRecord,         // refused by broker-side validation (e.g. a compacted topic)
	kerr.InvalidTimestamp,      // @timestamp outside message.timestamp.difference.max.ms
	kerr.InvalidTopicException, // the expanded topic name is invalid
}

// authnCodes mean the credentials were refused.
var authnCodes = []*kerr.Error{
	kerr.SaslAuthenticationFailed,
	kerr.IllegalSaslState,
	kerr.UnsupportedSaslMechanism,
}

// authzCodes mean the user lacks an ACL.
var authzCodes = []*kerr.Error{
	kerr.TopicAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed,
}

// isPermanent reports whether a record's error is one retrying cannot fix.
func isPermanent(err error) bool {
	if errors.Is(err, errInvalidTopic) {
		return true
	}
	for _, e := range permanentCodes {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// describe returns an error for a record's or a request's error err, with
// a hint an operator can act on, without secrets (franz-go's errors name
// brokers and topics, never credentials).
func describe(err error, topic string, withSASL bool) error {
	where := "kafka sink"
	if topic != "" {
		where += fmt.Sprintf(" (topic %q)", topic)
	}
	switch {
	case anyIs(err, authnCodes):
		return fmt.Errorf("%s: authentication failed: check sasl.mechanism, sasl.username and sasl.password: %w", where, err)
	case anyIs(err, authzCodes):
		return fmt.Errorf("%s: authorization failed: the user needs WRITE and DESCRIBE on the topic "+
			"(and IDEMPOTENT_WRITE on the cluster before Kafka 3.0): %w", where, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("%s: the topic does not exist: create it, or set auto_create_topics: true "+
			"if the brokers allow auto-creation: %w", where, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("%s: the event is larger than max_message_bytes or the topic's max.message.bytes: %w", where, err)
	case withSASL && errors.Is(err, io.EOF):
		return fmt.Errorf("%s: the broker closed the connection; with sasl configured this is often "+
			"a rejected password (some brokers close instead of answering): check the sasl settings: %w", where, err)
	case isTLSError(err):
		return fmt.Errorf("%s: TLS handshake failed: check tls.ca_file, tls.server_name and the client certificate: %w", where, err)
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out waiting for the brokers to acknowledge: %w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

func anyIs(err error, codes []*kerr.Error) bool {
	for _, e := range codes {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func isTLSError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rec tls.RecordHeaderError
		ae  tls.AlertError
		ve  *tls.CertificateVerificationError
	)
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rec) ||
		errors.As(err, &ve) || errors.As(err, &ae) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return true
	}
	// franz-go formats some handshake errors with %v, which loses the
	// types.
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}
