# Seed 003's file-backend functions (../shared/seeds/003_*.txt, "File-Based
# Storage Implementation" and list_milestones_file): the shell tooling that
# the watching tests run beside the daemon and the `peers` benchmark times
# msctl against. Run from the project's root.
#
# One change: Debian's `yq` is the jq wrapper, which reads `yq -r EXPR FILE`
# where the seed wrote the Go yq's `yq e EXPR FILE`; both print the value.

create_milestone_file() {
    local milestone_id=$1
    local milestone_data=$2

    # Create milestone file with atomic operation
    local temp_file=".milestones/active/${milestone_id}.tmp"
    local final_file=".milestones/active/${milestone_id}.yaml"

    echo "$milestone_data" > "$temp_file"
    mv "$temp_file" "$final_file"

    # Create event log entry
    echo "{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"event\":\"milestone_created\",\"milestone_id\":\"$milestone_id\",\"backend\":\"file\"}" >> ".milestones/logs/storage-events.jsonl"
}

read_milestone_file() {
    local milestone_id=$1
    local milestone_file=".milestones/active/${milestone_id}.yaml"

    if [ -f "$milestone_file" ]; then
        cat "$milestone_file"
    else
        return 1
    fi
}

update_milestone_file() {
    local milestone_id=$1
    local update_data=$2

    # Use existing atomic update pattern
    local milestone_file=".milestones/active/${milestone_id}.yaml"
    local temp_file="${milestone_file}.tmp"

    echo "$update_data" > "$temp_file"
    mv "$temp_file" "$milestone_file"
}

delete_milestone_file() {
    local milestone_id=$1

    # Move to completed directory instead of deletion
    mv ".milestones/active/${milestone_id}.yaml" ".milestones/completed/"
}

list_milestones_file() {
    local filter=$1

    for milestone_file in .milestones/active/*.yaml; do
        if [ -f "$milestone_file" ]; then
            local milestone_id=$(basename "$milestone_file" .yaml)
            local status=$(yq -r '.status' "$milestone_file")

            if [ "$filter" = "all" ] || [ "$status" = "$filter" ]; then
                echo "$milestone_id"
            fi
        fi
    done
}
