/* disk_tool — the standalone form of `nebula disk check|stats DIR`. */
#include "disk/disk.h"

int main(int argc, char **argv)
{
    return disk_tool_main(argc, argv);
}
