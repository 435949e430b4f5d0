package backend

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgresRejected_ClassifiesSQLSTATE(t *testing.T) {
	db := &postgresDB{}
	for code, want := range map[string]bool{
		"22001": true,  // string_data_right_truncation
		"22P02": true,  // invalid_text_representation
		"23502": true,  // not_null_violation
		"23505": true,  // unique_violation
		"23514": true,  // check_violation
		"42703": true,  // undefined_column
		"42501": true,  // insufficient_privilege
		"54000": true,  // program_limit_exceeded (index row too large)
		"40001": false, // serialization_failure
		"40P01": false, // deadlock_detected
		"53300": false, // too_many_connections
		"53100": false, // disk_full
		"57P01": false, // admin_shutdown
		"57014": false, // query_canceled
		"08006": false, // connection_failure
		"25006": false, // read_only_sql_transaction (a standby after failover)
		"P0001": false, // raise_exception
		"":      false,
	} {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code})
		if got := db.rejected(err); got != want {
			t.Errorf("rejected(SQLSTATE %q) = %v, want %v", code, got, want)
		}
	}
	if db.rejected(fmt.Errorf("dial tcp: connection refused")) {
		t.Error("a connection error is rejected")
	}
}
