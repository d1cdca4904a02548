/* File-system helpers: mkdir -p, atomic writes, the exclusive lock file. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"

static void test_mkdir_and_atomic_write(void **state)
{
    (void)state;
    char *dir = nb_test_dir("fsutil");
    char *deep = nb_xasprintf("%s/a/b/c", dir);
    ASSERT_OK(nb_mkdir_p(deep, 0755));
    ASSERT_OK(nb_mkdir_p(deep, 0755)); /* existing is fine */
    char *file = nb_xasprintf("%s/f", deep);
    ASSERT_OK(nb_write_file_atomic(file, "one", 3, 0600));
    ASSERT_OK(nb_write_file_atomic(file, "second", 6, 0600));
    char *text;
    size_t len;
    ASSERT_OK(nb_read_file(file, 100, &text, &len));
    assert_int_equal(len, 6);
    assert_string_equal(text, "second");
    free(text);
    ASSERT_RC(nb_read_file(file, 3, &text, &len), -EFBIG);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *under_file = nb_xasprintf("%s/x", file);
    ASSERT_RC(nb_mkdir_p(under_file, 0755), -ENOTDIR);
    nb_test_rmdir(dir);
    free(under_file);
    free(file);
    free(deep);
    free(dir);
}

static void test_lock_excludes_other_process(void **state)
{
    (void)state;
    char *dir = nb_test_dir("fsutil_lock");
    char *lock = nb_xasprintf("%s/LOCK", dir);
    int fd;
    pid_t holder;
    ASSERT_OK(nb_lock_file(lock, &fd, &holder));
    pid_t child = fork();
    if (child == 0) {
        int fd2;
        pid_t h = 0;
        int rc = nb_lock_file(lock, &fd2, &h);
        _exit(rc == NB_ELOCKED && h == getppid() ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    nb_unlock_file(fd);
    ASSERT_OK(nb_lock_file(lock, &fd, &holder));
    nb_unlock_file(fd);
    nb_test_rmdir(dir);
    free(lock);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_and_atomic_write),
        cmocka_unit_test(test_lock_excludes_other_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
