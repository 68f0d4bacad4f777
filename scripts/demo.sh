#!/bin/sh
# The seed case on a simulated Mac: FileVault still takes the OLD password,
# the login wants the NEW one. Passwords are the simulated Mac's documented
# test passwords, fed on stdin as a script would.
set -eu
FVSYNC=${FVSYNC:-target/debug/fvsync}
DIR=${DEMO_DIR:-target/demo-mac}
OLD='Old-Passw0rd!'
NEW='New-Passw0rd!'

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

rm -rf "$DIR"
step "fvsync sim create $DIR --scenario fv-old-login-new"
"$FVSYNC" sim create "$DIR" --scenario fv-old-login-new

step "fvsync --simulate $DIR volumes"
"$FVSYNC" --simulate "$DIR" volumes

step "fvsync --simulate $DIR users"
"$FVSYNC" --simulate "$DIR" users

step "fvsync --simulate $DIR diagnose --user alice --password-stdin   (OLD, NEW on stdin)"
rc=0
printf '%s\n%s\n' "$OLD" "$NEW" | "$FVSYNC" --simulate "$DIR" diagnose --user alice --password-stdin || rc=$?
echo "exit code $rc (3 = out of sync)"
[ "$rc" -eq 3 ]

step "fvsync --simulate $DIR reconcile --user alice --password-stdin --yes"
printf '%s\n%s\n' "$OLD" "$NEW" | "$FVSYNC" --simulate "$DIR" reconcile --user alice --password-stdin --yes

step "fvsync --simulate $DIR verify --user alice --password-stdin   (NEW on stdin)"
printf '%s\n' "$NEW" | "$FVSYNC" --simulate "$DIR" verify --user alice --password-stdin
echo "exit code 0: FileVault, login password, SRP verifier and keychain all accept NEW"

step "tail $DIR/Volumes/disk3s5/private/var/log/fvsync.log   (the audit log)"
cat "$DIR/Volumes/disk3s5/private/var/log/fvsync.log"
