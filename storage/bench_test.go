package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/avatarproxy/avatarproxy/storage/miniotest"
)

const benchObjectSize = 4 << 10 // a typical small avatar

func benchGet(b *testing.B, s store) {
	ctx := context.Background()
	data := randomBytes(benchObjectSize, 2)
	const keys = 64
	for i := range keys {
		if err := s.Put(ctx, fmt.Sprint("src/7900123456", i, "@c.us/full"), data); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(benchObjectSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.Get(ctx, fmt.Sprint("src/7900123456", i%keys, "@c.us/full")); err != nil || !ok {
			b.Fatalf("Get: ok %v, err %v", ok, err)
		}
		i++
	}
}

func benchPut(b *testing.B, s store) {
	ctx := context.Background()
	data := randomBytes(benchObjectSize, 3)
	b.SetBytes(benchObjectSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(ctx, fmt.Sprint("src/7900123456", i%1024, "@c.us/full"), data); err != nil {
			b.Fatalf("Put: %v", err)
		}
		i++
	}
}

func benchDisk(b *testing.B) *Disk {
	d, err := NewDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func benchS3(b *testing.B) *S3 {
	srv := miniotest.Start(b)
	return newTestS3(b, s3Config(srv, newBucketName()))
}

func BenchmarkDiskGet(b *testing.B) { benchGet(b, benchDisk(b)) }
func BenchmarkDiskPut(b *testing.B) { benchPut(b, benchDisk(b)) }
func BenchmarkS3Get(b *testing.B)   { benchGet(b, benchS3(b)) }
func BenchmarkS3Put(b *testing.B)   { benchPut(b, benchS3(b)) }
