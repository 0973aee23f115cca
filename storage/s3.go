package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// s3MaxRetries is minio-go's attempt budget per call (1 = no retry). Its
// default of 10, with jittered back-off sleeps of up to a second each, spends
// any short deadline the caller gives on a server that is down. minio-go
// also sleeps once more after the last failed attempt (retry.go in v7.4.1),
// so a dead server costs the sum of all the back-offs: with 2 attempts that
// is at most 200 ms + 400 ms, which leaves most of a 1-2 s deadline to the
// caller while still riding out one blip (a reset connection, a 503
// SlowDown). The sleeps honour ctx, so a shorter deadline still wins.
const s3MaxRetries = 2

// S3Config says where an S3 store lives.
type S3Config struct {
	// Endpoint is host:port, without a scheme (required).
	Endpoint string
	// Bucket is created by NewS3 if missing (required).
	Bucket string
	// AccessKey and SecretKey are static credentials (both required). The
	// secret never appears in an error.
	AccessKey string
	SecretKey string
	// Region is sent with requests and used to create the bucket; empty
	// lets the client discover it (fine for MinIO, one lookup per bucket on
	// AWS).
	Region string
	// Prefix is put before every object name so several deployments can
	// share a bucket; a trailing "/" is added if missing. Optional.
	Prefix string
	// Secure selects HTTPS.
	Secure bool
}

// Validate reports every problem with c at once (errors.Join). Messages name
// fields, never their secret values.
func (c S3Config) Validate() error {
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("storage: s3: endpoint is required"))
	case strings.Contains(c.Endpoint, "://") || strings.ContainsAny(c.Endpoint, "/?#"):
		errs = append(errs, errors.New("storage: s3: endpoint must be host:port, without scheme or path (use Secure for https)"))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("storage: s3: bucket is required"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("storage: s3: bucket: %w", err))
	}
	if c.AccessKey == "" {
		errs = append(errs, errors.New("storage: s3: access key is required"))
	}
	if c.SecretKey == "" {
		errs = append(errs, errors.New("storage: s3: secret key is required"))
	}
	if strings.HasPrefix(c.Prefix, "/") {
		errs = append(errs, errors.New("storage: s3: prefix must not start with /"))
	}
	return errors.Join(errs...)
}

// S3 stores objects in one bucket of an S3-compatible service, named by
// objectName under an optional prefix. It is safe for concurrent use; many
// processes may share a bucket.
//
// Every call is bounded by its ctx: give each one a deadline. A failed
// request is retried once (see s3MaxRetries), never beyond the deadline.
type S3 struct {
	// MaxObjectSize caps the bytes of one object, on Get and on Put; zero
	// means DefaultMaxObjectSize. Set it before first use.
	MaxObjectSize int64
	// NameKey, when not empty, keys object names (HMAC-SHA256) so they
	// cannot be traced back to phone numbers; see objectName. It is a
	// secret. Every handle on one bucket and prefix must use the same key,
	// or they miss each other's objects; a Disk with the same key names an
	// object as an S3 does. Set it before first use.
	NameKey []byte

	client *minio.Client
	core   minio.Core // the same client, for calls that return headers
	bucket string
	prefix string
}

// NewS3 validates cfg, connects, and creates the bucket if it is missing. It
// tolerates another replica creating the same bucket at the same moment.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		MaxRetries: s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: s3: client: %w", err)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &S3{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, prefix: prefix}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("storage: s3: check bucket %q: %w", s.bucket, err)
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err == nil {
		return nil
	}
	// Another replica may have won the race (BucketAlreadyOwnedByYou, or on
	// some services BucketAlreadyExists); what matters is that the bucket is
	// now there and ours to use, so ask again rather than trust the code.
	if exists, err2 := s.client.BucketExists(ctx, s.bucket); err2 == nil && exists {
		return nil
	}
	return fmt.Errorf("storage: s3: create bucket %q: %w", s.bucket, err)
}

func (s *S3) name(key string) string { return objectName(s.prefix, key, s.NameKey) }

// isNoSuchKey reports the one error that means a miss. minio-go returns
// ErrorResponse by value, unwrapped, so ToErrorResponse sees it.
func isNoSuchKey(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

// Get returns the object stored under key. ok=false with a nil error is a
// miss. The caller owns data.
func (s *S3) Get(ctx context.Context, key string) (data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("storage: s3 get: %w", err)
	}
	// Core.GetObject sends the GET at once and returns the object's size
	// (Content-Length) with the body, so the bytes are read into one
	// allocation of that size. Client.GetObject's lazy Object learns the
	// size only from its first Read, and its Stat before a Read is a
	// separate HEAD request.
	body, info, _, err := s.core.GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
	if isNoSuchKey(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage: s3 get: %w", err)
	}
	defer body.Close()
	data, err = readCapped(body, limit(s.MaxObjectSize), info.Size)
	if err != nil {
		return nil, false, fmt.Errorf("storage: s3 get: %w", err)
	}
	return data, true, nil
}

// Put stores data under key, replacing any previous object, in a single PUT
// request, which S3 applies atomically: a concurrent Get sees the old object
// or the new one, never a mix. Put does not keep data.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: s3 put: %w", err)
	}
	if int64(len(data)) > limit(s.MaxObjectSize) {
		return fmt.Errorf("storage: s3 put: %w", ErrTooLarge)
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.name(key), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{
			ContentType: "application/octet-stream",
			// One request up to the cap (multipart would start at
			// 16 MiB): one round trip, and no orphaned parts to clean
			// if we die mid-upload.
			DisableMultipart: true,
		})
	if err != nil {
		return fmt.Errorf("storage: s3 put: %w", err)
	}
	return nil
}

// Delete removes the object under key. A missing object is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: s3 delete: %w", err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{})
	if err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("storage: s3 delete: %w", err)
	}
	return nil
}

// Ping reports whether the bucket is reachable with our credentials right
// now (one HEAD request). It does not write: readiness probes run often and
// S3 bills writes.
func (s *S3) Ping(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("storage: s3 ping: %w", err)
	}
	if !exists {
		return fmt.Errorf("storage: s3 ping: bucket %q is gone", s.bucket)
	}
	return nil
}
