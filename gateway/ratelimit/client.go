package ratelimit

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis modes of NewRedisClient.
const (
	RedisStandalone = "standalone"
	RedisCluster    = "cluster"
	RedisSentinel   = "sentinel"
)

// Timeouts of the Redis client. They are short on purpose: a limiter that waits for
// a slow Redis slows every request, and the failure mode is a better answer.
const (
	redisDialTimeout = 250 * time.Millisecond
	redisIOTimeout   = 100 * time.Millisecond
)

// NewRedisClient connects to Redis as go-redis URLs say (rediss:// for TLS) in the
// given mode: standalone, cluster (addr=... parameters for more nodes) or sentinel
// (master_name=... and the sentinels' addresses). A non-empty passwordFile's trimmed
// content is the password, so that it stays out of process listings. The client
// does not retry: the limiter's failure mode handles an unreachable Redis.
func NewRedisClient(url, mode, passwordFile string) (redis.UniversalClient, error) {
	password := ""
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, fmt.Errorf("redis password file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	switch mode {
	case "", RedisStandalone:
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		setPassword(&o.Password, password)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = redisDialTimeout, redisIOTimeout, redisIOTimeout, -1
		return redis.NewClient(o), nil
	case RedisCluster:
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		setPassword(&o.Password, password)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = redisDialTimeout, redisIOTimeout, redisIOTimeout, -1
		return redis.NewClusterClient(o), nil
	case RedisSentinel:
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		setPassword(&o.Password, password)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = redisDialTimeout, redisIOTimeout, redisIOTimeout, -1
		return redis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("redis mode %q is not standalone, cluster or sentinel", mode)
}

func setPassword(field *string, password string) {
	if password != "" {
		*field = password
	}
}
