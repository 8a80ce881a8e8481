/* Unit tests for err.c: every code has a message and a name. */
#include "check.h"
#include "err.h"

static void test_every_code_has_text(void)
{
    for (int e = 0; e < ADVREC_ERR__COUNT; e++) {
        CHECK(advrec_err2str((advrec_err_t)e)[0] != '\0');
        CHECK(advrec_err_name((advrec_err_t)e)[0] != '\0');
    }
    CHECK_STR(advrec_err2str(ADVREC_OK), "success");
    CHECK_STR(advrec_err_name(ADVREC_ERR_DECODE), "DECODE");
    CHECK_STR(advrec_err2str((advrec_err_t)9999), "unknown error");
}

static void test_seterr_formats_and_returns(void)
{
    char buf[32];

    CHECK_INT(advrec_seterr(ADVREC_ERR_PARSE, buf, sizeof(buf), "line %d", 7),
              ADVREC_ERR_PARSE);
    CHECK_STR(buf, "line 7");
    /* A NULL buffer is allowed: the code alone is returned. */
    CHECK_INT(advrec_seterr(ADVREC_ERR_IO, NULL, 0, "x"), ADVREC_ERR_IO);
}

int main(void)
{
    RUN(test_every_code_has_text);
    RUN(test_seterr_formats_and_returns);
    return DONE();
}
