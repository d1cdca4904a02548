# Sourced by ab.sh and rread_ab.sh: builds the disk engine at a base git
# ref and in this tree, and links one driver against each build (each with
# its own headers: the driver's view of disk.h must match its library).
#   ab_build DIR BASE DRIVER.c NAME  ->  DIR/NAME-base, DIR/NAME-new
ab_build() {
    local dir=$1 base=$2 driver=$3 name=$4 v src
    mkdir -p "$dir"
    rm -rf "$dir/base-src"
    mkdir -p "$dir/base-src"
    git archive "$base" | tar -x -m -C "$dir/base-src"
    for v in base new; do
        src=$([ $v = base ] && echo "$dir/base-src" || echo .)
        cmake -S "$src" -B "$dir/$v-build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$dir/$v-build" -j2 --target nb_disk nb_common >/dev/null
        cc -O2 -std=gnu17 -I "$src/src" -o "$dir/$name-$v" "$driver" \
            "$dir/$v-build/src/disk/libnb_disk.a" "$dir/$v-build/src/common/libnb_common.a" \
            $(pkg-config --libs liburing libxxhash) -lpthread
    done
}
