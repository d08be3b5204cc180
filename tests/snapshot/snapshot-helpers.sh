# Helpers shared by the snapshot tests (sourced after tests/functions.sh).
. "$top_srcdir/tests/qcow2/qcow2-helpers.sh"

# be32 FILE OFFSET / be64 FILE OFFSET: a big-endian field as a decimal.
be32()
{
    echo $((16#$(peek "$1" "$2" 4)))
}

be64()
{
    echo $((16#$(peek "$1" "$2" 8)))
}

# sn_table FILE: the snapshot table's offset (header bytes 64..71).
sn_table()
{
    be64 "$1" 64
}

# rpat IMG OFFSET LEN BYTE: both readers see BYTE over the range.
rpat()
{
    qemu-io -f qcow2 -c "read -P $4 $2 $3" "$1" >/dev/null 2>&1 &&
        strata-io -f qcow2 -c "read -P $4 $2 $3" "$1" >/dev/null 2>&1
}

# sn_names IMG: "id:name" of every snapshot, one per line (strata's list).
sn_names()
{
    strata-img snapshot -l "$1" | awk 'NR > 2 { print $1 ":" $2 }'
}

# qclean DESC IMG: qemu-img check finds no errors and no leaks.
qclean()
{
    check "$1: qemu-img check clean" qemu-img check -q "$2"
}

# sn_entries IMG: the file offset of every snapshot table entry, one a line.
sn_entries()
{
    local img=$1 off n i extra id name
    off=$(sn_table "$img")
    n=$(be32 "$img" 60)
    for ((i = 0; i < n; i++)); do
        echo "$off"
        id=$((16#$(peek "$img" $((off + 12)) 2)))
        name=$((16#$(peek "$img" $((off + 14)) 2)))
        extra=$(be32 "$img" $((off + 36)))
        off=$(((off + 40 + extra + id + name + 7) / 8 * 8))
    done
}

# zero_dates IMG: clear every entry's date (seconds and nanoseconds), the
# only bytes two tools taking the same snapshots legitimately write apart.
zero_dates()
{
    local off
    for off in $(sn_entries "$1"); do
        poke "$1" $((off + 16)) 0000000000000000
    done
}
