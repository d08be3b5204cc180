#!/usr/bin/env bash
# strata-img info --output=json: qemu-img's keys, key order and layout
# for a raw image, alone and as a --backing-chain array, and a document a
# JSON parser accepts.
. "$top_srcdir/tests/functions.sh"
requires strata-img
tmpdir
cd "$T"

truncate -s 10M a.raw
dd if=/dev/urandom of=a.raw bs=64k count=2 conv=notrunc status=none
actual=$(($(stat -c %b a.raw) * 512))

plan 8

out=$(strata-img info --output=json a.raw)
check_eq "one image: qemu-img's document" "$out" "{
    \"virtual-size\": 10485760,
    \"filename\": \"a.raw\",
    \"format\": \"raw\",
    \"actual-size\": $actual,
    \"dirty-flag\": false
}"

out=$(strata-img info --output=json --backing-chain a.raw)
check_eq "--backing-chain: an array of documents" "$out" "[
    {
        \"virtual-size\": 10485760,
        \"filename\": \"a.raw\",
        \"format\": \"raw\",
        \"actual-size\": $actual,
        \"dirty-flag\": false
    }
]"

out=$(strata-img info --output=json -f raw "$T/a.raw")
check_match "the file name is kept as given" "$out" \
    "^    \"filename\": \"$T/a.raw\",\$"

# A name that needs escaping stays valid JSON.
cp a.raw 'we"ird\name.raw'
out=$(strata-img info --output=json 'we"ird\name.raw')
check_match "quotes and backslashes are escaped" "$out" \
    '^    "filename": "we\\"ird\\\\name\.raw",$'

if type -P jq >/dev/null 2>&1; then
    check_eq "jq reads the virtual size" \
        "$(strata-img info --output=json a.raw | jq '."virtual-size"')" 10485760
    check_eq "jq reads the chain" \
        "$(strata-img info --output=json --backing-chain a.raw | jq -r '.[0].format')" raw
else
    skip "jq reads the virtual size" "jq not installed"
    skip "jq reads the chain" "jq not installed"
fi

truncate -s 0 empty.raw
out=$(strata-img info --output=json empty.raw)
check_match "an empty image has size 0" "$out" '^    "virtual-size": 0,$'

rc=0
strata-img info --output=json nonexist.raw >out.txt 2>&1 || rc=$?
check_eq "an error prints no document" "$rc:$(grep -c '{' out.txt)" "1:0"

done_testing
