"""The nightly batch: refresh inputs, plan within a deadline, publish atomically, record proposals."""
