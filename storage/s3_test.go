package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/avatarproxy/avatarproxy/storage/miniotest"
)

var bucketSeq atomic.Int64

// newBucketName returns a bucket name not used before in this test binary.
func newBucketName() string {
	return fmt.Sprintf("avatars-%03d", bucketSeq.Add(1))
}

func s3Config(srv *miniotest.Server, bucket string) S3Config {
	return S3Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	}
}

func newTestS3(t testing.TB, cfg S3Config) *S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := NewS3(ctx, cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

// rawClient talks to the server directly, to look at what the store wrote.
func rawClient(t *testing.T, srv *miniotest.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listObjects(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	var names []string
	for obj := range c.ListObjects(testCtx(t), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s: %v", bucket, obj.Err)
		}
		names = append(names, obj.Key)
	}
	slices.Sort(names)
	return names
}

func TestS3Conformance(t *testing.T) {
	srv := miniotest.Start(t)
	conformance(t, func(t *testing.T) func(int64) store {
		cfg := s3Config(srv, newBucketName())
		return func(maxObjectSize int64) store {
			s := newTestS3(t, cfg)
			s.MaxObjectSize = maxObjectSize
			return s
		}
	}, 40)
}

func TestS3(t *testing.T) {
	srv := miniotest.Start(t)
	raw := rawClient(t, srv)

	t.Run("bucket created once under a race", func(t *testing.T) {
		cfg := s3Config(srv, newBucketName())
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := NewS3(ctx, cfg); err != nil {
					t.Errorf("NewS3 racing other replicas: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok, err := raw.BucketExists(testCtx(t), cfg.Bucket); err != nil || !ok {
			t.Fatalf("bucket exists = %v, %v; want true", ok, err)
		}
	})

	t.Run("names hide keys and honour the prefix", func(t *testing.T) {
		bucket := newBucketName()
		const key = "src/79001234567@c.us/full"
		plain := newTestS3(t, s3Config(srv, bucket))
		cfg := s3Config(srv, bucket)
		cfg.Prefix = "deploy-b" // no trailing slash: NewS3 adds it
		prefixed := newTestS3(t, cfg)
		mustPut(t, plain, key, []byte("plain"))
		mustPut(t, prefixed, key, []byte("prefixed"))

		got := listObjects(t, raw, bucket)
		want := []string{objectName("", key, nil), objectName("deploy-b/", key, nil)}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("objects = %q, want %q", got, want)
		}
		if g := string(mustGet(t, prefixed, key)); g != "prefixed" {
			t.Errorf("prefixed Get = %q: prefixes do not separate stores", g)
		}
		if g := string(mustGet(t, plain, key)); g != "plain" {
			t.Errorf("plain Get = %q: prefixes do not separate stores", g)
		}
		info, err := raw.StatObject(testCtx(t), bucket, objectName("", key, nil), minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.ContentType != "application/octet-stream" {
			t.Errorf("content type %q, want application/octet-stream", info.ContentType)
		}
	})

	t.Run("missing bucket is an error, not a miss", func(t *testing.T) {
		bucket := newBucketName()
		s := newTestS3(t, s3Config(srv, bucket))
		if err := raw.RemoveBucket(testCtx(t), bucket); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Get(testCtx(t), "k"); err == nil || ok {
			t.Errorf("Get from a deleted bucket: ok %v, err %v; want an error", ok, err)
		}
		if err := s.Ping(testCtx(t)); err == nil {
			t.Error("Ping of a deleted bucket: no error")
		}
	})

	t.Run("wrong secret fails without echoing it", func(t *testing.T) {
		cfg := s3Config(srv, newBucketName())
		cfg.SecretKey = "wrong-secret-" + srv.SecretKey
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := NewS3(ctx, cfg)
		if err == nil {
			t.Fatal("NewS3 with a wrong secret: no error")
		}
		if strings.Contains(err.Error(), cfg.SecretKey) || strings.Contains(err.Error(), srv.SecretKey) {
			t.Fatalf("error reveals the secret: %v", err)
		}
		if code := minio.ToErrorResponse(errors.Unwrap(err)).Code; code != "SignatureDoesNotMatch" {
			t.Fatalf("NewS3 with a wrong secret: %v (code %q), want SignatureDoesNotMatch", err, code)
		}
	})
}

// An object has one name in both tiers for one name key: what a Disk wrote,
// copied file for object into a bucket (a migration, a restored backup), is
// found by an S3 with the same key, and the other way round; an S3 without
// the key, or with another, misses it.
func TestNameKeyAcrossTiers(t *testing.T) {
	srv := miniotest.Start(t)
	raw := rawClient(t, srv)
	nameKey := []byte("name-key-0123456789")
	bucket := newBucketName()
	s3 := newTestS3(t, s3Config(srv, bucket))
	s3.NameKey = nameKey
	disk, dir := newTestDisk(t)
	disk.NameKey = nameKey

	const fromDisk, fromS3 = "src/79001234567@c.us/full", "src/79001234568@c.us/full"
	mustPut(t, disk, fromDisk, []byte("written by disk"))
	mustPut(t, s3, fromS3, []byte("written by s3"))

	// Disk to bucket: every file, under its path as the object name.
	for _, f := range files(t, dir) {
		if _, err := raw.FPutObject(testCtx(t), bucket, f, filepath.Join(dir, filepath.FromSlash(f)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Bucket to disk: every object, under its name as the file path.
	for _, name := range listObjects(t, raw, bucket) {
		if err := raw.FGetObject(testCtx(t), bucket, name, filepath.Join(dir, filepath.FromSlash(name)), minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	if g := string(mustGet(t, s3, fromDisk)); g != "written by disk" {
		t.Errorf("S3 Get of the disk's object = %q", g)
	}
	if g := string(mustGet(t, disk, fromS3)); g != "written by s3" {
		t.Errorf("Disk Get of the S3 object = %q", g)
	}
	got := listObjects(t, raw, bucket)
	want := []string{objectName("", fromDisk, nameKey), objectName("", fromS3, nameKey)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("objects = %q, want the keyed names %q", got, want)
	}
	for name, other := range map[string][]byte{"no key": nil, "another key": []byte("name-key-0123456780")} {
		t.Run(name, func(t *testing.T) {
			o := newTestS3(t, s3Config(srv, bucket))
			o.NameKey = other
			mustMiss(t, o, fromDisk)
			mustMiss(t, o, fromS3)
		})
	}
}

func TestS3ConfigValidate(t *testing.T) {
	const secret = "s3cr3t-value-never-shown"
	good := S3Config{Endpoint: "127.0.0.1:9000", Bucket: "avatars", AccessKey: "ak", SecretKey: secret}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*S3Config)
	}{
		{"no endpoint", func(c *S3Config) { c.Endpoint = "" }},
		{"endpoint with scheme", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:9000" }},
		{"endpoint with path", func(c *S3Config) { c.Endpoint = "127.0.0.1:9000/x" }},
		{"no bucket", func(c *S3Config) { c.Bucket = "" }},
		{"bad bucket", func(c *S3Config) { c.Bucket = "Not_A_Bucket" }},
		{"no access key", func(c *S3Config) { c.AccessKey = "" }},
		{"no secret key", func(c *S3Config) { c.SecretKey = "" }},
		{"absolute prefix", func(c *S3Config) { c.Prefix = "/avatars" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the secret: %v", err)
			}
			if _, err := NewS3(context.Background(), cfg); err == nil {
				t.Fatal("NewS3 accepted an invalid config")
			}
		})
	}
	t.Run("errors are joined", func(t *testing.T) {
		err := S3Config{}.Validate()
		if n := strings.Count(err.Error(), "\n") + 1; n < 4 {
			t.Fatalf("want every problem reported, got %d: %v", n, err)
		}
	})
}

// TestS3Outage stops the server under a store: calls with the short
// deadline a request handler gives them must return errors (not hang, not
// report misses), and the same store must work again once the server is
// back.
func TestS3Outage(t *testing.T) {
	errNoError := errors.New("Get reported no error")
	const key = "src/79001234567@c.us/full"
	srv := miniotest.Start(t)
	s := newTestS3(t, s3Config(srv, newBucketName()))
	mustPut(t, s, key, []byte("before the outage"))

	srv.Stop()
	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error {
			_, ok, err := s.Get(ctx, key)
			if err == nil {
				return fmt.Errorf("%w (ok=%v)", errNoError, ok)
			}
			return err
		}},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, key, []byte("during")) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, key) }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- op.call(ctx) }()
			// Not a timing assertion: a generous watchdog so a call that
			// ignores its deadline fails here with a clear message rather
			// than at the test binary's timeout.
			select {
			case err := <-done:
				if err == nil || errors.Is(err, errNoError) {
					t.Fatalf("no error with the server down: %v", err)
				}
				if strings.Contains(err.Error(), srv.SecretKey) || strings.Contains(err.Error(), "79001234567") {
					t.Fatalf("error reveals the secret or the key: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("call did not return: the ctx deadline does not bound it")
			}
		})
	}

	srv.Restart(t)
	if got := mustGet(t, s, key); string(got) != "before the outage" {
		t.Fatalf("after restart Get = %q, want the object from before", got)
	}
	mustPut(t, s, key, []byte("after"))
	if got := mustGet(t, s, key); string(got) != "after" {
		t.Fatalf("after restart Get = %q, want %q", got, "after")
	}
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
}
