/* chronology._resolution: `resolve_distinct` and the `balanced` policy's choice, in C.

   The rules live in chronology/resolution.py, which stays the reference: this module does the
   same steps in the same order with the same Python objects (values, ids and dates are compared
   with Python's own comparisons, figures computed with Python's own arithmetic), so that every
   view comes out identical, byte for byte. It only skips the interpreter's per-step cost, which
   is most of what a replay spends building views. Constants and classes (field kinds, grade
   scores, `FieldView`) come from resolution.py through `configure()`, so they are defined once.
   tests/test_native_resolution.py holds the two to each other; CHRON_PURE_PYTHON=1 turns this
   module off. */

#include "_configure.h"

/* Claim's field positions (records.Claim, a named tuple), set by configure(). */
static Py_ssize_t I_ID, I_VALUE, I_QUALIFIER, I_SOURCE_ID, I_HEDGE, I_GENERIC, I_CREDIBILITY, I_RETRACTED, I_RANK;
static Py_ssize_t CLAIM_SIZE;

static PyObject *FieldView, *Alternative, *field_type, *balanced, *dumps, *dumps_options, *round_function;
static PyObject *span_days; /* resolution._span_days, for a date span this module does not parse */
static PyObject *K_DATE, *K_ACTOR, *K_PLACE, *K_TAGS, *K_RELATION, *NEVER_DISPUTED;
static PyObject *RELIABILITY_SCORE, *PRECISION_SCORE, *PLACE_PRECISIONS;
static PyObject *ABOUT_TOLERANCE, *ONE, *FOUR, *ZERO_FLOAT, *EMPTY;
static PyObject *S_deprecated, *S_preferred, *S_range, *S_exact, *S_about, *S_at_least, *S_at_most;
static PyObject *S_km, *S_name, *S_earliest, *S_latest, *S_precision;
static PyObject *S_retracted, *S_confirmed, *S_disputed, *S_reported;
static PyObject *A_numeric, *A_int, *A_reliability, *A_publisher, *A_published, *A_published_day;
static PyObject *DATE_CLASS; /* datetime.date */
static UuidMaker uuids;
static int configured = 0;

#define ITEM(claim, index) PyTuple_GET_ITEM((claim), (index))

/* --- small steps ------------------------------------------------------------------------ */

/* Claim.counts: not retracted and not deprecated. */
static int counts(PyObject *claim) {
    return claim_counts(claim, I_RETRACTED, I_RANK, S_deprecated);
}

/* The JSON orjson writes for `value` when it is null, a boolean, an int within 64 bits or a
   string of printable ASCII needing no escape (most stated values: counts, names, kinds),
   written here; NULL without an error for anything else. */
static PyObject *plain_json(PyObject *value) {
    if (value == Py_None) return PyBytes_FromString("null");
    if (value == Py_True) return PyBytes_FromString("true");
    if (value == Py_False) return PyBytes_FromString("false");
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (number == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return NULL;
        }
        char digits[24];
        int length = snprintf(digits, sizeof digits, "%lld", number);
        return PyBytes_FromStringAndSize(digits, length);
    }
    if (PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        const Py_UCS1 *text = PyUnicode_1BYTE_DATA(value);
        for (Py_ssize_t i = 0; i < length; i++)
            if (text[i] < 0x20 || text[i] > 0x7e || text[i] == '"' || text[i] == '\\') return NULL;
        PyObject *json = PyBytes_FromStringAndSize(NULL, length + 2);
        if (json == NULL) return NULL;
        char *at = PyBytes_AS_STRING(json);
        at[0] = '"';
        memcpy(at + 1, text, length);
        at[length + 1] = '"';
        return json;
    }
    return NULL;
}

static PyObject *key_of(PyObject *value) {
    /* resolution._key: the value's canonical JSON bytes. */
    PyObject *plain = plain_json(value);
    if (plain != NULL || PyErr_Occurred()) return plain;
    PyObject *args = PyTuple_Pack(1, value);
    if (args == NULL) return NULL;
    PyObject *key = PyObject_Call(dumps, args, dumps_options);
    Py_DECREF(args);
    return key;
}

static PyObject *number_of(PyObject *claim) {
    /* resolution._number (borrowed or new reference: always returns a new one). */
    PyObject *value = ITEM(claim, I_VALUE);
    if (PyDict_Check(value)) return PyObject_GetItem(value, S_km);
    Py_INCREF(value);
    return value;
}

static int is_range(PyObject *claim) {
    return PyObject_RichCompareBool(ITEM(claim, I_QUALIFIER), S_range, Py_EQ);
}

static int two_of(PyObject *pair, PyObject **first, PyObject **second) {
    /* `low, high = pair` (new references). */
    PyObject *fast = PySequence_Fast(pair, "cannot unpack a non-sequence");
    if (fast == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != 2) {
        PyErr_Format(PyExc_ValueError, "expected 2 values to unpack, got %zd", PySequence_Fast_GET_SIZE(fast));
        Py_DECREF(fast);
        return -1;
    }
    *first = PySequence_Fast_GET_ITEM(fast, 0);
    *second = PySequence_Fast_GET_ITEM(fast, 1);
    Py_INCREF(*first);
    Py_INCREF(*second);
    Py_DECREF(fast);
    return 0;
}

static PyObject *point(PyObject *claim) {
    /* resolution.point: the single figure a numeric claim stands for (a range's midpoint). */
    PyObject *number = number_of(claim);
    if (number == NULL) return NULL;
    int range = is_range(claim);
    if (range <= 0) {
        if (range < 0) Py_CLEAR(number);
        return number;
    }
    PyObject *low, *high, *sum = NULL, *middle = NULL;
    if (two_of(number, &low, &high) < 0) {
        Py_DECREF(number);
        return NULL;
    }
    Py_DECREF(number);
    sum = PyNumber_Add(low, high);
    if (sum != NULL) {
        PyObject *two = PyLong_FromLong(2);
        middle = two ? PyNumber_TrueDivide(sum, two) : NULL;
        Py_XDECREF(two);
    }
    if (middle != NULL && PyLong_Check(low) && PyLong_Check(high)) {
        PyObject *whole = PyNumber_Long(middle);
        Py_SETREF(middle, whole);
    }
    Py_XDECREF(sum);
    Py_DECREF(low);
    Py_DECREF(high);
    return middle;
}

static int bounds(PyObject *claim, PyObject **low, PyObject **high) {
    /* resolution.bounds: new references, NULL standing for None (no bound). */
    *low = *high = NULL;
    PyObject *number = number_of(claim);
    if (number == NULL) return -1;
    PyObject *qualifier = ITEM(claim, I_QUALIFIER);
    int is;
    if ((is = PyObject_RichCompareBool(qualifier, S_exact, Py_EQ)) != 0) {
        if (is < 0) goto error;
        *low = number;
        *high = Py_NewRef(number);
        return 0;
    }
    if ((is = PyObject_RichCompareBool(qualifier, S_about, Py_EQ)) != 0) {
        if (is < 0) goto error;
        /* slack = max(abs(number) * ABOUT_TOLERANCE, 1): max keeps the first unless 1 is larger */
        PyObject *size = PyNumber_Absolute(number);
        PyObject *slack = size ? PyNumber_Multiply(size, ABOUT_TOLERANCE) : NULL;
        Py_XDECREF(size);
        if (slack == NULL) goto error;
        int larger = PyObject_RichCompareBool(ONE, slack, Py_GT);
        if (larger < 0) {
            Py_DECREF(slack);
            goto error;
        }
        if (larger) Py_SETREF(slack, Py_NewRef(ONE));
        *low = PyNumber_Subtract(number, slack);
        *high = PyNumber_Add(number, slack);
        Py_DECREF(slack);
        Py_DECREF(number);
        if (*low == NULL || *high == NULL) {
            Py_CLEAR(*low);
            Py_CLEAR(*high);
            return -1;
        }
        return 0;
    }
    if ((is = PyObject_RichCompareBool(qualifier, S_at_least, Py_EQ)) != 0) {
        if (is < 0) goto error;
        *low = number;
        return 0;
    }
    if ((is = PyObject_RichCompareBool(qualifier, S_at_most, Py_EQ)) != 0) {
        if (is < 0) goto error;
        *high = number;
        return 0;
    }
    int ok = two_of(number, low, high);
    Py_DECREF(number);
    return ok;
error:
    Py_DECREF(number);
    return -1;
}

static int stated_range(PyObject *claim, PyObject **low, PyObject **high) {
    /* resolution.stated_range: new references. */
    PyObject *number = number_of(claim);
    if (number == NULL) return -1;
    int range = is_range(claim);
    if (range < 0) {
        Py_DECREF(number);
        return -1;
    }
    if (range) {
        int ok = two_of(number, low, high);
        Py_DECREF(number);
        return ok;
    }
    *low = number;
    *high = Py_NewRef(number);
    return 0;
}

static int contains(PyObject *claim, PyObject *figure) {
    PyObject *low, *high;
    if (bounds(claim, &low, &high) < 0) return -1;
    int inside = 1;
    if (low != NULL) inside = PyObject_RichCompareBool(low, figure, Py_LE);
    if (inside > 0 && high != NULL) inside = PyObject_RichCompareBool(figure, high, Py_LE);
    Py_XDECREF(low);
    Py_XDECREF(high);
    return inside;
}

static int compare_taken(PyObject *a, PyObject *b, int op) {
    /* a <op> b, taking both references (either NULL: an error already set, -1) */
    int result = a != NULL && b != NULL ? PyObject_RichCompareBool(a, b, op) : -1;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return result;
}

static int item_compare(PyObject *left, PyObject *left_key, PyObject *right, PyObject *right_key, int op) {
    /* left[left_key] <op> right[right_key] */
    PyObject *a = PyObject_GetItem(left, left_key);
    if (a == NULL) return -1;
    return compare_taken(a, PyObject_GetItem(right, right_key), op);
}

/* resolution.agrees. `claim_key` and `candidate_key` are the values' _key bytes when the
   caller has them (NULL: made here when needed). */
static int agrees(PyObject *kind, int numeric, PyObject *claim, PyObject *candidate, PyObject *candidate_claim,
                  PyObject *claim_key, PyObject *candidate_key) {
    PyObject *value = ITEM(claim, I_VALUE);
    if (numeric) return contains(claim, candidate);
    if (kind == K_DATE) {
        int first = item_compare(value, S_earliest, candidate, S_latest, Py_LE);
        if (first <= 0) return first;
        return item_compare(candidate, S_earliest, value, S_latest, Py_LE);
    }
    if (kind == K_ACTOR) {
        int generic = PyObject_IsTrue(ITEM(claim, I_GENERIC));
        if (generic != 0) return generic;
        generic = PyObject_IsTrue(ITEM(candidate_claim, I_GENERIC));
        if (generic != 0) return generic;
        return PyObject_RichCompareBool(value, candidate, Py_EQ);
    }
    if (kind == K_PLACE) return item_compare(value, S_name, candidate, S_name, Py_EQ);
    PyObject *a = claim_key ? Py_NewRef(claim_key) : key_of(value);
    if (a == NULL) return -1;
    return compare_taken(a, candidate_key ? Py_NewRef(candidate_key) : key_of(candidate), Py_EQ);
}

static int keep_extreme(PyObject **current, PyObject *value, int op) {
    /* Python's min (op Py_LT) or max (Py_GT) as values come: `*current` keeps the first value
       no later one beats. Takes `value`'s reference; -1 on error. */
    if (*current == NULL) {
        *current = value;
        return 0;
    }
    int beats = PyObject_RichCompareBool(value, *current, op);
    if (beats > 0)
        Py_SETREF(*current, value);
    else
        Py_DECREF(value);
    return beats < 0 ? -1 : 0;
}

static PyObject *source_of(PyObject *sources, PyObject *claim) {
    return source_by_id(sources, ITEM(claim, I_SOURCE_ID));
}

/* source.published_day: a publication date that is a plain date is its own day, as the
   property says, and is read without calling it; anything else asks the property. */
static PyObject *published_day(PyObject *source) {
    PyObject *published = PyObject_GetAttr(source, A_published);
    if (published == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return NULL;
        PyErr_Clear();
    } else if (Py_IS_TYPE(published, (PyTypeObject *)DATE_CLASS)) {
        return published;
    } else {
        Py_DECREF(published);
    }
    return PyObject_GetAttr(source, A_published_day);
}

static PyObject *id_int(PyObject *uuid) {
    return uuid_int(&uuids, uuid, A_int);
}

static PyObject *values_by_sorted_key(PyObject *dict) {
    /* [dict[k] for k in sorted(dict)] */
    PyObject *keys = PyDict_Keys(dict), *values = NULL;
    if (keys == NULL || PyList_Sort(keys) < 0) goto done;
    values = PyList_New(PyList_GET_SIZE(keys));
    if (values == NULL) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *value = PyDict_GetItemWithError(dict, PyList_GET_ITEM(keys, i));
        if (value == NULL) {
            Py_CLEAR(values);
            goto done;
        }
        PyList_SET_ITEM(values, i, Py_NewRef(value));
    }
done:
    Py_XDECREF(keys);
    return values;
}

static PyObject *distinct_sources(PyObject *stating) {
    /* resolution.distinct_sources: the sources of `stating` (a list of claims), each once, in
       id order. */
    Py_ssize_t n = PyList_GET_SIZE(stating);
    if (n == 1) return PyTuple_Pack(1, ITEM(PyList_GET_ITEM(stating, 0), I_SOURCE_ID));
    PyObject *by_int = PyDict_New(), *in_order = NULL, *result = NULL;
    if (by_int == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *source_id = ITEM(PyList_GET_ITEM(stating, i), I_SOURCE_ID);
        PyObject *number = id_int(source_id);
        if (number == NULL || PyDict_SetItem(by_int, number, source_id) < 0) {
            Py_XDECREF(number);
            goto done;
        }
        Py_DECREF(number);
    }
    in_order = values_by_sorted_key(by_int);
    if (in_order != NULL) result = PyList_AsTuple(in_order);
done:
    Py_DECREF(by_int);
    Py_XDECREF(in_order);
    return result;
}

static PyObject *ids_of(PyObject *claims) {
    /* tuple(c.id for c in claims), claims a list */
    Py_ssize_t n = PyList_GET_SIZE(claims);
    PyObject *ids = PyTuple_New(n);
    if (ids == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(ids, i, Py_NewRef(ITEM(PyList_GET_ITEM(claims, i), I_ID)));
    return ids;
}

static long score(PyObject *table, PyObject *name) {
    PyObject *value = PyObject_GetItem(table, name);
    if (value == NULL) return -1;
    long number = PyLong_AsLong(value);
    Py_DECREF(value);
    return number;
}

/* Days from 0001-01-01 of an ISO day "YYYY-MM-DD"; -1 if the text is not one. */
static long iso_day_number(PyObject *text) {
    if (!PyUnicode_Check(text) || PyUnicode_GET_LENGTH(text) != 10) return -1;
    Py_UCS4 c[10];
    for (int i = 0; i < 10; i++) c[i] = PyUnicode_READ_CHAR(text, i);
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (c[i] != '-') return -1;
        } else if (c[i] < '0' || c[i] > '9') {
            return -1;
        }
    }
    long year = (c[0] - '0') * 1000 + (c[1] - '0') * 100 + (c[2] - '0') * 10 + (c[3] - '0');
    long month = (c[5] - '0') * 10 + (c[6] - '0');
    long day = (c[8] - '0') * 10 + (c[9] - '0');
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1) return -1;
    if (day > month_days[month - 1] + (month == 2 && leap)) return -1;
    long y = year - 1;
    long days = y * 365 + y / 4 - y / 100 + y / 400;
    for (long m = 1; m < month; m++) days += month_days[m - 1] + (m == 2 && leap);
    return days + day - 1;
}

static int span_length(PyObject *span, long *result) {
    /* resolution._span_days: days from a span's earliest to its latest day. */
    PyObject *earliest = PyObject_GetItem(span, S_earliest);
    PyObject *latest = earliest ? PyObject_GetItem(span, S_latest) : NULL;
    long first = earliest ? iso_day_number(earliest) : -1, last = latest ? iso_day_number(latest) : -1;
    Py_XDECREF(earliest);
    Py_XDECREF(latest);
    if (PyErr_Occurred()) return -1;
    if (first >= 0 && last >= 0) {
        *result = last - first;
        return 0;
    }
    /* not two ISO days: the Python function decides (and raises as it would) */
    PyObject *days = PyObject_CallOneArg(span_days, span);
    if (days == NULL) return -1;
    *result = PyLong_AsLong(days);
    Py_DECREF(days);
    return PyErr_Occurred() ? -1 : 0;
}

/* --- the balanced policy's choice --------------------------------------------------------- */

typedef struct {
    long preferred, not_generic, reliability, credibility, agreeing, precision;
    PyObject *latest;    /* max published_day of the stating sources (new reference) */
    PyObject *first_id;  /* min claim id int among the stating claims (new reference) */
} BalancedKey;

static void clear_key(BalancedKey *key) {
    Py_CLEAR(key->latest);
    Py_CLEAR(key->first_id);
}

static int balanced_key(PyObject *kind, int numeric, PyObject *candidate, PyObject *active, PyObject *sources,
                        PyObject *active_keys, BalancedKey *key) {
    PyObject *value = PyTuple_GET_ITEM(candidate, 0), *stating = PyTuple_GET_ITEM(candidate, 1);
    PyObject *first = PyList_GET_ITEM(stating, 0);
    Py_ssize_t n = PyList_GET_SIZE(stating);
    memset(key, 0, sizeof(*key));
    key->not_generic = 1;
    key->precision = LONG_MIN;
    key->reliability = LONG_MIN;
    key->credibility = LONG_MIN;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PyList_GET_ITEM(stating, i);
        int is = PyObject_RichCompareBool(ITEM(claim, I_RANK), S_preferred, Py_EQ);
        if (is < 0) return -1;
        key->preferred |= is;
        is = PyObject_IsTrue(ITEM(claim, I_GENERIC));
        if (is < 0) return -1;
        if (is) key->not_generic = 0;
        PyObject *source = source_of(sources, claim);
        if (source == NULL) return -1;
        PyObject *grade = PyObject_GetAttr(source, A_reliability);
        long reliability = grade ? score(RELIABILITY_SCORE, grade) : -1;
        Py_XDECREF(grade);
        PyObject *day = PyErr_Occurred() ? NULL : published_day(source);
        Py_DECREF(source);
        if (day == NULL) return -1;
        if (reliability > key->reliability) key->reliability = reliability;
        if (keep_extreme(&key->latest, day, Py_GT) < 0) return -1;
        /* 7 - (c.credibility or 6) */
        PyObject *credibility = ITEM(claim, I_CREDIBILITY);
        long stated = 6;
        is = PyObject_IsTrue(credibility);
        if (is < 0) return -1;
        if (is) {
            stated = PyLong_AsLong(credibility);
            if (stated == -1 && PyErr_Occurred()) return -1;
        }
        if (7 - stated > key->credibility) key->credibility = 7 - stated;
        if (kind != K_DATE && kind != K_PLACE) { /* _precision: the best qualifier stated */
            long precision = score(PRECISION_SCORE, ITEM(claim, I_QUALIFIER));
            if (precision == -1 && PyErr_Occurred()) return -1;
            if (precision > key->precision) key->precision = precision;
        }
        PyObject *number = id_int(ITEM(claim, I_ID));
        if (number == NULL || keep_extreme(&key->first_id, number, Py_LT) < 0) return -1;
    }
    if (kind == K_DATE) {
        long days;
        if (span_length(value, &days) < 0) return -1;
        key->precision = -days;
    } else if (kind == K_PLACE) {
        PyObject *precision = PyObject_GetItem(value, S_precision);
        if (precision == NULL) return -1;
        Py_ssize_t index = PySequence_Index(PLACE_PRECISIONS, precision);
        Py_DECREF(precision);
        if (index < 0) return -1;
        key->precision = -(long)index;
    }
    /* independent sources agreeing with the value */
    PyObject *agreeing = PySet_New(NULL);
    if (agreeing == NULL) return -1;
    PyObject *candidate_key = NULL;
    if (!numeric && kind != K_DATE && kind != K_ACTOR && kind != K_PLACE) {
        candidate_key = key_of(value);
        if (candidate_key == NULL) {
            Py_DECREF(agreeing);
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(active); i++) {
        PyObject *claim = PyList_GET_ITEM(active, i);
        PyObject *claim_key = active_keys ? PyList_GET_ITEM(active_keys, i) : NULL;
        int is = agrees(kind, numeric, claim, value, first, claim_key, candidate_key);
        if (is > 0) {
            PyObject *number = id_int(ITEM(claim, I_SOURCE_ID));
            is = number ? PySet_Add(agreeing, number) : -1;
            Py_XDECREF(number);
        }
        if (is < 0) {
            Py_XDECREF(candidate_key);
            Py_DECREF(agreeing);
            return -1;
        }
    }
    Py_XDECREF(candidate_key);
    key->agreeing = (long)PySet_GET_SIZE(agreeing);
    Py_DECREF(agreeing);
    return 0;
}

/* 1 if `a` ranks before `b` in balanced order, 0 if not, -1 on error. */
static int ranks_before(BalancedKey *a, BalancedKey *b) {
    long left[] = {a->preferred, a->not_generic, a->reliability, a->credibility, a->agreeing, a->precision};
    long right[] = {b->preferred, b->not_generic, b->reliability, b->credibility, b->agreeing, b->precision};
    for (int i = 0; i < 6; i++)
        if (left[i] != right[i]) return left[i] > right[i];
    int is = PyObject_RichCompareBool(a->latest, b->latest, Py_EQ);
    if (is < 0) return -1;
    if (!is) return PyObject_RichCompareBool(a->latest, b->latest, Py_GT);
    return PyObject_RichCompareBool(a->first_id, b->first_id, Py_LT);
}

static PyObject *choose_balanced(PyObject *kind, int numeric, PyObject *candidates, PyObject *active,
                                 PyObject *sources, PyObject *active_keys) {
    /* resolution.balanced: the candidate ranked first (a borrowed reference). */
    BalancedKey best, next;
    PyObject *chosen = PyList_GET_ITEM(candidates, 0);
    if (balanced_key(kind, numeric, chosen, active, sources, active_keys, &best) < 0) {
        clear_key(&best);
        return NULL;
    }
    for (Py_ssize_t i = 1; i < PyList_GET_SIZE(candidates); i++) {
        PyObject *candidate = PyList_GET_ITEM(candidates, i);
        if (balanced_key(kind, numeric, candidate, active, sources, active_keys, &next) < 0) {
            clear_key(&next);
            clear_key(&best);
            return NULL;
        }
        int before = ranks_before(&next, &best);
        if (before < 0) {
            clear_key(&next);
            clear_key(&best);
            return NULL;
        }
        if (before) {
            clear_key(&best);
            best = next;
            chosen = candidate;
        } else {
            clear_key(&next);
        }
    }
    clear_key(&best);
    return chosen;
}

/* --- resolve_distinct ------------------------------------------------------------------------ */

static PyObject *field_view(PyObject *items[13]) {
    /* FieldView(field, best, status, supporting, dissenting, number_of_sources, disagreement,
       alternatives, low, high, qualifier, hedge, retracted); steals the items' references */
    for (int i = 0; i < 13; i++) {
        if (items[i] == NULL) { /* a part failed: its error stands */
            for (int j = 0; j < 13; j++) Py_XDECREF(items[j]);
            return NULL;
        }
    }
    return named_tuple_taking(FieldView, items, 13);
}

/* resolution._candidates: distinct stated values with their claims, ordered by _key; `keys`
   receives each active claim's _key (a list, or NULL when there is one claim). */
static PyObject *candidates_of(int numeric, PyObject *active, PyObject **keys) {
    Py_ssize_t n = PyList_GET_SIZE(active);
    *keys = NULL;
    if (n == 1) {
        PyObject *claim = PyList_GET_ITEM(active, 0);
        PyObject *value = numeric ? point(claim) : Py_NewRef(ITEM(claim, I_VALUE));
        if (value == NULL) return NULL;
        PyObject *stating = PyList_New(1);
        if (stating == NULL) {
            Py_DECREF(value);
            return NULL;
        }
        PyList_SET_ITEM(stating, 0, Py_NewRef(claim));
        PyObject *candidate = PyTuple_Pack(2, value, stating);
        Py_DECREF(value);
        Py_DECREF(stating);
        if (candidate == NULL) return NULL;
        PyObject *result = PyList_New(1);
        if (result == NULL) {
            Py_DECREF(candidate);
            return NULL;
        }
        PyList_SET_ITEM(result, 0, candidate);
        return result;
    }
    PyObject *groups = PyDict_New(), *result = NULL;
    PyObject *claim_keys = PyList_New(n);
    if (groups == NULL || claim_keys == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PyList_GET_ITEM(active, i);
        PyObject *value = numeric ? point(claim) : Py_NewRef(ITEM(claim, I_VALUE));
        if (value == NULL) goto done;
        PyObject *key = key_of(value);
        if (key == NULL) {
            Py_DECREF(value);
            goto done;
        }
        PyList_SET_ITEM(claim_keys, i, Py_NewRef(key));
        PyObject *group = PyDict_GetItemWithError(groups, key);
        if (group == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                Py_DECREF(value);
                goto done;
            }
            PyObject *stating = PyList_New(0);
            group = stating ? PyTuple_Pack(2, value, stating) : NULL;
            Py_XDECREF(stating);
            if (group == NULL || PyDict_SetItem(groups, key, group) < 0) {
                Py_XDECREF(group);
                Py_DECREF(key);
                Py_DECREF(value);
                goto done;
            }
            Py_DECREF(group); /* the dict holds it */
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (PyList_Append(PyTuple_GET_ITEM(group, 1), claim) < 0) goto done;
    }
    result = values_by_sorted_key(groups);
    if (result != NULL) *keys = Py_NewRef(claim_keys);
done:
    Py_XDECREF(groups);
    Py_XDECREF(claim_keys);
    return result;
}

static PyObject *accumulate(PyObject *active) {
    /* resolution._accumulate: every value stated (lists flattened), each once, sorted. */
    PyObject *values = PySet_New(NULL);
    if (values == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(active); i++) {
        PyObject *value = ITEM(PyList_GET_ITEM(active, i), I_VALUE);
        int ok;
        if (PyList_Check(value)) {
            ok = 0;
            for (Py_ssize_t j = 0; j < PyList_GET_SIZE(value) && ok == 0; j++)
                ok = PySet_Add(values, PyList_GET_ITEM(value, j));
        } else {
            ok = PySet_Add(values, value);
        }
        if (ok < 0) {
            Py_DECREF(values);
            return NULL;
        }
    }
    PyObject *sorted = PySequence_List(values);
    Py_DECREF(values);
    if (sorted != NULL && PyList_Sort(sorted) < 0) Py_CLEAR(sorted);
    return sorted;
}

/* The numeric part of a field view: low, high, qualifier and disagreement; `best` may be
   replaced (a distance: the stated value with the best km). New references out. */
static int numeric_summary(PyObject *active, PyObject **best, PyObject **low, PyObject **high,
                           PyObject **qualifier, PyObject **disagreement) {
    *low = *high = *qualifier = *disagreement = NULL;
    PyObject *best_number = *best;
    Py_ssize_t n = PyList_GET_SIZE(active);
    long best_score = LONG_MIN;
    PyObject *best_qualifier = NULL; /* borrowed */
    PyObject *stating_claim = NULL;  /* borrowed */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PyList_GET_ITEM(active, i);
        PyObject *a, *b;
        if (stated_range(claim, &a, &b) < 0) goto error;
        if (keep_extreme(low, a, Py_LT) < 0) {
            Py_DECREF(b);
            goto error;
        }
        if (keep_extreme(high, b, Py_GT) < 0) goto error;
        PyObject *figure = point(claim);
        if (figure == NULL) goto error;
        int is = PyObject_RichCompareBool(figure, best_number, Py_EQ);
        Py_DECREF(figure);
        if (is < 0) goto error;
        if (is) {
            if (stating_claim == NULL) stating_claim = claim;
            /* sorted by (-PRECISION_SCORE[q], q): the highest score, then the first name */
            PyObject *stated = ITEM(claim, I_QUALIFIER);
            long value = score(PRECISION_SCORE, stated);
            if (value == -1 && PyErr_Occurred()) goto error;
            if (best_qualifier == NULL || value > best_score) {
                best_score = value;
                best_qualifier = stated;
            } else if (value == best_score) {
                int earlier = PyObject_RichCompareBool(stated, best_qualifier, Py_LT);
                if (earlier < 0) goto error;
                if (earlier) best_qualifier = stated;
            }
        }
    }
    int is_range = best_qualifier ? PyObject_RichCompareBool(best_qualifier, S_range, Py_EQ) : 1;
    if (is_range < 0) goto error;
    *qualifier = Py_NewRef(is_range ? S_exact : best_qualifier);
    PyObject *distance = NULL;
    if (PyDict_Check(ITEM(PyList_GET_ITEM(active, 0), I_VALUE))) {
        if (stating_claim == NULL) {
            PyErr_SetNone(PyExc_StopIteration);
            goto error;
        }
        distance = PyDict_Copy(ITEM(stating_claim, I_VALUE));
        if (distance == NULL || PyDict_SetItem(distance, S_km, best_number) < 0) {
            Py_XDECREF(distance);
            goto error;
        }
    }
    PyObject *spread = PyNumber_Subtract(*high, *low);
    if (spread == NULL) goto error;
    int nonzero = PyObject_IsTrue(best_number);
    if (nonzero < 0) {
        Py_DECREF(spread);
        goto error;
    }
    if (nonzero) {
        PyObject *ratio = PyNumber_TrueDivide(spread, best_number);
        *disagreement = ratio ? PyObject_CallFunctionObjArgs(round_function, ratio, FOUR, NULL) : NULL;
        Py_XDECREF(ratio);
    } else {
        *disagreement = PyNumber_Float(spread);
    }
    Py_DECREF(spread);
    if (*disagreement == NULL) {
        Py_XDECREF(distance);
        goto error;
    }
    if (distance != NULL) Py_SETREF(*best, distance); /* a distance: the stated value, best km */
    return 0;
error:
    Py_CLEAR(*low);
    Py_CLEAR(*high);
    Py_CLEAR(*qualifier);
    return -1;
}

static PyObject *resolve_distinct(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._resolution is not configured");
        return NULL;
    }
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "resolve_distinct(field_name, claims, sources, policy)");
        return NULL;
    }
    PyObject *field_name = args[0], *sources = args[2], *policy = args[3];
    PyObject *kind = NULL, *claims = NULL, *active = NULL, *withdrawn = NULL, *candidates = NULL;
    PyObject *active_keys = NULL, *best = NULL, *best_number = NULL, *stating = NULL, *support = NULL;
    PyObject *dissenting = NULL, *result = NULL, *chosen = NULL;
    PyObject *low = NULL, *high = NULL, *qualifier = NULL, *disagreement = NULL;

    kind = PyObject_CallOneArg(field_type, field_name);
    if (kind == NULL) goto done;
    PyObject *numeric_flag = PyObject_GetAttr(kind, A_numeric);
    int numeric = numeric_flag ? PyObject_IsTrue(numeric_flag) : -1;
    Py_XDECREF(numeric_flag);
    if (numeric < 0) goto done;

    claims = PySequence_Fast(args[1], "claims must be a sequence");
    if (claims == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(claims);
    active = PyList_New(0);
    if (active == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *claim = PySequence_Fast_GET_ITEM(claims, i);
        if (!PyTuple_Check(claim) || PyTuple_GET_SIZE(claim) != CLAIM_SIZE) {
            PyErr_SetString(PyExc_TypeError, "resolve_distinct takes Claim records");
            goto done;
        }
        int counted = counts(claim);
        if (counted < 0 || (counted && PyList_Append(active, claim) < 0)) goto done;
    }
    Py_ssize_t n_active = PyList_GET_SIZE(active);
    if (n_active == n) {
        withdrawn = Py_NewRef(EMPTY);
    } else {
        withdrawn = PyTuple_New(n - n_active);
        if (withdrawn == NULL) goto done;
        Py_ssize_t at = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *claim = PySequence_Fast_GET_ITEM(claims, i);
            int counted = counts(claim);
            if (counted < 0) goto done;
            if (!counted) PyTuple_SET_ITEM(withdrawn, at++, Py_NewRef(ITEM(claim, I_ID)));
        }
    }
    if (n_active == 0) {
        PyObject *items[13] = {Py_NewRef(field_name), Py_NewRef(Py_None), Py_NewRef(S_retracted),
                               Py_NewRef(EMPTY), Py_NewRef(EMPTY), PyLong_FromLong(0), Py_NewRef(ZERO_FLOAT),
                               Py_NewRef(EMPTY), Py_NewRef(Py_None), Py_NewRef(Py_None), Py_NewRef(S_exact),
                               Py_NewRef(Py_None), Py_NewRef(withdrawn)};
        result = field_view(items);
        goto done;
    }

    candidates = candidates_of(numeric, active, &active_keys);
    if (candidates == NULL) goto done;
    dissenting = PyList_New(0);
    if (dissenting == NULL) goto done;
    if (kind == K_TAGS || kind == K_RELATION) {
        best = accumulate(active);
        if (best == NULL) goto done;
        support = Py_NewRef(active);
    } else {
        if (PyList_GET_SIZE(candidates) == 1) {
            chosen = Py_NewRef(PyList_GET_ITEM(candidates, 0));
        } else if (policy == balanced) {
            chosen = choose_balanced(kind, numeric, candidates, active, sources, active_keys);
            Py_XINCREF(chosen);
        } else {
            chosen = PyObject_CallFunctionObjArgs(policy, field_name, candidates, active, sources, NULL);
        }
        if (chosen == NULL) goto done;
        if (two_of(chosen, &best, &stating) < 0) goto done;
        PyObject *stating_list = PySequence_Fast(stating, "a policy's candidate holds a list of claims");
        if (stating_list == NULL) goto done;
        if (PySequence_Fast_GET_SIZE(stating_list) == 0) {
            Py_DECREF(stating_list);
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            goto done;
        }
        PyObject *first = PySequence_Fast_GET_ITEM(stating_list, 0);
        Py_INCREF(first);
        Py_DECREF(stating_list);
        /* the best value's own _key, for the kinds compared by it */
        PyObject *best_key = NULL;
        if (!numeric && kind != K_DATE && kind != K_ACTOR && kind != K_PLACE) {
            best_key = key_of(best);
            if (best_key == NULL) {
                Py_DECREF(first);
                goto done;
            }
        }
        support = PyList_New(0);
        for (Py_ssize_t i = 0; support != NULL && i < n_active; i++) {
            PyObject *claim = PyList_GET_ITEM(active, i);
            PyObject *claim_key = active_keys ? PyList_GET_ITEM(active_keys, i) : NULL;
            int is = agrees(kind, numeric, claim, best, first, claim_key, best_key);
            if (is < 0 || PyList_Append(is ? support : dissenting, is ? claim : ITEM(claim, I_ID)) < 0)
                Py_CLEAR(support);
        }
        Py_DECREF(first);
        Py_XDECREF(best_key);
        if (support == NULL) goto done;
    }

    if (numeric) {
        best_number = Py_NewRef(best); /* held while `best` may become a distance's dict */
        if (numeric_summary(active, &best, &low, &high, &qualifier, &disagreement) < 0) goto done;
        Py_CLEAR(best_number);
    } else {
        low = Py_NewRef(Py_None);
        high = Py_NewRef(Py_None);
        qualifier = Py_NewRef(S_exact);
        if (PyList_GET_SIZE(dissenting) == 0) { /* round(0.0, 4), without the call */
            disagreement = Py_NewRef(ZERO_FLOAT);
        } else {
            PyObject *ratio = PyFloat_FromDouble((double)PyList_GET_SIZE(dissenting) / (double)n_active);
            disagreement = ratio ? PyObject_CallFunctionObjArgs(round_function, ratio, FOUR, NULL) : NULL;
            Py_XDECREF(ratio);
        }
        if (disagreement == NULL) goto done;
    }

    /* hedge: None if any supporting (non-generic) claim stated it flatly, else the first hedge */
    PyObject *hedge = NULL; /* borrowed */
    int flat = 0, any = 0;
    PyObject *publishers = PySet_New(NULL);
    if (publishers == NULL) goto done;
    int preferred = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(support); i++) {
        PyObject *claim = PyList_GET_ITEM(support, i);
        int generic = PyObject_IsTrue(ITEM(claim, I_GENERIC));
        if (generic < 0) goto publishers_failed;
        if (!generic) {
            PyObject *stated = ITEM(claim, I_HEDGE);
            any = 1;
            if (stated == Py_None) {
                flat = 1;
            } else if (hedge == NULL) {
                hedge = stated;
            } else {
                int earlier = PyObject_RichCompareBool(stated, hedge, Py_LT);
                if (earlier < 0) goto publishers_failed;
                if (earlier) hedge = stated;
            }
        }
        PyObject *source = source_of(sources, claim);
        PyObject *publisher = source ? PyObject_GetAttr(source, A_publisher) : NULL;
        Py_XDECREF(source);
        int added = publisher ? PySet_Add(publishers, publisher) : -1;
        Py_XDECREF(publisher);
        if (added < 0) goto publishers_failed;
        if (!preferred) {
            int is = PyObject_RichCompareBool(ITEM(claim, I_RANK), S_preferred, Py_EQ);
            if (is < 0) goto publishers_failed;
            preferred = is;
        }
    }
    Py_ssize_t independent = PySet_GET_SIZE(publishers);
    Py_DECREF(publishers);
    if (flat || !any) hedge = NULL;

    PyObject *status;
    if (preferred) {
        status = S_confirmed;
    } else {
        int never = PySet_Contains(NEVER_DISPUTED, kind);
        if (never < 0) goto done;
        if (PyList_GET_SIZE(dissenting) && !never)
            status = S_disputed;
        else if (independent >= 2 && hedge == NULL)
            status = S_confirmed;
        else
            status = S_reported;
    }

    Py_ssize_t n_candidates = PyList_GET_SIZE(candidates);
    PyObject *alternatives = PyTuple_New(n_candidates);
    if (alternatives == NULL) goto done;
    for (Py_ssize_t i = 0; i < n_candidates; i++) {
        PyObject *candidate = PyList_GET_ITEM(candidates, i);
        PyObject *items = PyTuple_New(3);
        if (items == NULL) {
            Py_DECREF(alternatives);
            goto done;
        }
        PyTuple_SET_ITEM(items, 0, Py_NewRef(PyTuple_GET_ITEM(candidate, 0)));
        PyObject *ids = ids_of(PyTuple_GET_ITEM(candidate, 1));
        PyObject *cited = ids ? distinct_sources(PyTuple_GET_ITEM(candidate, 1)) : NULL;
        PyTuple_SET_ITEM(items, 1, ids);
        PyTuple_SET_ITEM(items, 2, cited);
        PyObject *alternative = cited ? named_tuple_of(Alternative, items) : NULL;
        Py_DECREF(items);
        if (alternative == NULL) {
            Py_DECREF(alternatives);
            goto done;
        }
        PyTuple_SET_ITEM(alternatives, i, alternative);
    }

    PyObject *all_sources = PySet_New(NULL);
    for (Py_ssize_t i = 0; all_sources != NULL && i < n_active; i++) {
        PyObject *number = id_int(ITEM(PyList_GET_ITEM(active, i), I_SOURCE_ID));
        if (number == NULL || PySet_Add(all_sources, number) < 0) Py_CLEAR(all_sources);
        Py_XDECREF(number);
    }
    if (all_sources == NULL) {
        Py_DECREF(alternatives);
        goto done;
    }
    Py_ssize_t number_of_sources = PySet_GET_SIZE(all_sources);
    Py_DECREF(all_sources);

    PyObject *items[13] = {Py_NewRef(field_name),
                           Py_NewRef(best),
                           Py_NewRef(status),
                           ids_of(support),
                           PyList_AsTuple(dissenting),
                           PyLong_FromSsize_t(number_of_sources),
                           Py_NewRef(disagreement),
                           alternatives,
                           Py_NewRef(low),
                           Py_NewRef(high),
                           Py_NewRef(qualifier),
                           Py_NewRef(hedge ? hedge : Py_None),
                           Py_NewRef(withdrawn)};
    result = field_view(items);
    goto done;

publishers_failed:
    Py_DECREF(publishers);
done:
    Py_XDECREF(kind);
    Py_XDECREF(claims);
    Py_XDECREF(active);
    Py_XDECREF(withdrawn);
    Py_XDECREF(candidates);
    Py_XDECREF(active_keys);
    Py_XDECREF(best);
    Py_XDECREF(best_number);
    Py_XDECREF(stating);
    Py_XDECREF(support);
    Py_XDECREF(dissenting);
    Py_XDECREF(chosen);
    Py_XDECREF(low);
    Py_XDECREF(high);
    Py_XDECREF(qualifier);
    Py_XDECREF(disagreement);
    return result;
}

/* --- reading stored views back ----------------------------------------------------------- */

static PyObject *python_field_view_from_stored, *UuidMemo;

static PyObject *ids_of_texts(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* ids_of_texts(texts, memo): as chronology.resolution.ids_of_texts */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._resolution is not configured");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ids_of_texts(texts, memo)");
        return NULL;
    }
    PyObject *memo = args[1];
    if (!PyList_CheckExact(args[0]) || !PyDict_Check(memo)) { /* anything else as Python reads it */
        PyObject *getter = PyObject_GetAttrString(memo, "__getitem__"), *mapped = NULL, *ids = NULL;
        if (getter != NULL) mapped = PyObject_CallFunctionObjArgs((PyObject *)&PyMap_Type, getter, args[0], NULL);
        if (mapped != NULL) ids = PySequence_Tuple(mapped);
        Py_XDECREF(getter);
        Py_XDECREF(mapped);
        return ids;
    }
    PyObject *texts = args[0];
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *ids = PyTuple_New(n);
    for (Py_ssize_t i = 0; ids != NULL && i < n; i++) {
        PyObject *id = uuid_in_memo(&uuids, UuidMemo, memo, PyList_GET_ITEM(texts, i));
        if (id == NULL) Py_CLEAR(ids);
        else PyTuple_SET_ITEM(ids, i, id);
    }
    return ids;
}

/* tuple(ids[place] for place in places) when `places` is a list of ints each a place in the
   tuple `ids`; NULL with no error set otherwise (the caller leaves the field to Python). */
static PyObject *ids_at(PyObject *ids, PyObject *places) {
    if (!PyList_CheckExact(places)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(places), count = PyTuple_GET_SIZE(ids);
    PyObject *found = PyTuple_New(n);
    for (Py_ssize_t i = 0; found != NULL && i < n; i++) {
        PyObject *place = PyList_GET_ITEM(places, i);
        Py_ssize_t at = PyLong_CheckExact(place) ? PyLong_AsSsize_t(place) : -1;
        if (at < 0 || at >= count) {
            PyErr_Clear(); /* an int too large for Py_ssize_t: Python says what is wrong */
            Py_CLEAR(found);
        } else {
            PyTuple_SET_ITEM(found, i, Py_NewRef(PyTuple_GET_ITEM(ids, at)));
        }
    }
    return found;
}

/* resolution.field_view_from_stored(stored, claims, sources) for a field as a stored view
   holds it; anything else (not a list of 8 to 13, a place that is not one) goes to the Python
   function, with its errors. */
static PyObject *field_view_from(PyObject *stored, PyObject *claims, PyObject *sources) {
    Py_ssize_t size = PyList_CheckExact(stored) ? PyList_GET_SIZE(stored) : 0;
    if (size < 8 || size > 13) goto python;
    PyObject *items[13] = {NULL};
    for (Py_ssize_t i = 0; i < 13; i++) {
        PyObject *item = i < size ? PyList_GET_ITEM(stored, i) : NULL;
        if (i == 3 || i == 4 || i == 12) {
            if ((items[i] = item ? ids_at(claims, item) : Py_NewRef(EMPTY)) == NULL) goto failed;
        } else if (i == 7) {
            if (!PyList_CheckExact(item)) goto failed;
            Py_ssize_t n = PyList_GET_SIZE(item);
            if ((items[7] = PyTuple_New(n)) == NULL) goto failed;
            for (Py_ssize_t k = 0; k < n; k++) {
                PyObject *given = PyList_GET_ITEM(item, k), *parts;
                if (!PyList_CheckExact(given) || PyList_GET_SIZE(given) != 3 || (parts = PyTuple_New(3)) == NULL)
                    goto failed;
                PyTuple_SET_ITEM(parts, 0, Py_NewRef(PyList_GET_ITEM(given, 0)));
                PyObject *at_claims = ids_at(claims, PyList_GET_ITEM(given, 1)), *at_sources = NULL;
                if (at_claims != NULL) PyTuple_SET_ITEM(parts, 1, at_claims);
                if (at_claims == NULL || (at_sources = ids_at(sources, PyList_GET_ITEM(given, 2))) == NULL) {
                    Py_DECREF(parts);
                    goto failed;
                }
                PyTuple_SET_ITEM(parts, 2, at_sources);
                PyObject *made = named_tuple_of(Alternative, parts);
                Py_DECREF(parts);
                if (made == NULL) goto failed;
                PyTuple_SET_ITEM(items[7], k, made);
            }
        } else if (item != NULL) {
            items[i] = Py_NewRef(item);
        } else { /* left out: resolution.STORED_DEFAULTS */
            items[i] = Py_NewRef(i == 10 ? S_exact : Py_None);
        }
    }
    return field_view(items); /* takes the items' references */
failed:
    for (int i = 0; i < 13; i++) Py_XDECREF(items[i]);
    if (PyErr_Occurred()) return NULL;
python:
    return PyObject_CallFunctionObjArgs(python_field_view_from_stored, stored, claims, sources, NULL);
}

static PyObject *field_views_from_stored(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    /* field_views_from_stored(fields, claims, sources): as resolution.field_views_from_stored */
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "chronology._resolution is not configured");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "field_views_from_stored(fields, claims, sources)");
        return NULL;
    }
    PyObject *claims = args[1], *sources = args[2];
    int in_c = PyTuple_CheckExact(claims) && PyTuple_CheckExact(sources); /* else each field as Python reads it */
    PyObject *fields = PyList_CheckExact(args[0]) ? Py_NewRef(args[0]) : PySequence_List(args[0]);
    if (fields == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(fields);
    PyObject *views = PyTuple_New(n);
    for (Py_ssize_t i = 0; views != NULL && i < n; i++) {
        PyObject *field = PyList_GET_ITEM(fields, i);
        PyObject *view = in_c ? field_view_from(field, claims, sources)
                              : PyObject_CallFunctionObjArgs(python_field_view_from_stored, field, claims, sources, NULL);
        if (view == NULL) Py_CLEAR(views);
        else PyTuple_SET_ITEM(views, i, view);
    }
    Py_DECREF(fields);
    return views;
}

/* --- configuration ------------------------------------------------------------------------- */

static PyObject *configure(PyObject *module, PyObject *names) {
    /* configure(names): the classes and constants of chronology.resolution, by name. */
    if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    PyObject *claim_fields = NULL;
    if (take(names, "FieldView", &FieldView) < 0 || take(names, "Alternative", &Alternative) < 0 ||
        take(names, "field_type", &field_type) < 0 || take(names, "balanced", &balanced) < 0 ||
        take(names, "dumps", &dumps) < 0 || take(names, "dumps_options", &dumps_options) < 0 ||
        take(names, "round", &round_function) < 0 || take(names, "span_days", &span_days) < 0 ||
        take(names, "DATE", &K_DATE) < 0 || take(names, "ACTOR", &K_ACTOR) < 0 || take(names, "PLACE", &K_PLACE) < 0 ||
        take(names, "TAGS", &K_TAGS) < 0 || take(names, "RELATION", &K_RELATION) < 0 ||
        take(names, "NEVER_DISPUTED", &NEVER_DISPUTED) < 0 || take(names, "RELIABILITY_SCORE", &RELIABILITY_SCORE) < 0 ||
        take(names, "PRECISION_SCORE", &PRECISION_SCORE) < 0 || take(names, "PLACE_PRECISIONS", &PLACE_PRECISIONS) < 0 ||
        take(names, "ABOUT_TOLERANCE", &ABOUT_TOLERANCE) < 0 || take(names, "claim_fields", &claim_fields) < 0 ||
        take(names, "field_view_from_stored", &python_field_view_from_stored) < 0 ||
        take(names, "UuidMemo", &UuidMemo) < 0 || uuid_maker_configure(&uuids, names) < 0)
        return NULL;
    if (!PyType_Check(UuidMemo)) {
        PyErr_SetString(PyExc_TypeError, "configure(): UuidMemo must be a class");
        return NULL;
    }
    if (!PyAnySet_Check(NEVER_DISPUTED) || !PyDict_Check(dumps_options)) {
        PyErr_SetString(PyExc_TypeError, "NEVER_DISPUTED must be a set and dumps_options a dict");
        return NULL;
    }
    CLAIM_SIZE = PySequence_Size(claim_fields);
    if (CLAIM_SIZE < 0 || claim_index(claim_fields, "id", &I_ID) < 0 ||
        claim_index(claim_fields, "value", &I_VALUE) < 0 || claim_index(claim_fields, "qualifier", &I_QUALIFIER) < 0 ||
        claim_index(claim_fields, "source_id", &I_SOURCE_ID) < 0 || claim_index(claim_fields, "hedge", &I_HEDGE) < 0 ||
        claim_index(claim_fields, "generic", &I_GENERIC) < 0 ||
        claim_index(claim_fields, "credibility", &I_CREDIBILITY) < 0 ||
        claim_index(claim_fields, "retracted", &I_RETRACTED) < 0 || claim_index(claim_fields, "rank", &I_RANK) < 0)
        return NULL;
    if (intern(&S_deprecated, "deprecated") < 0 || intern(&S_preferred, "preferred") < 0 ||
        intern(&S_range, "range") < 0 || intern(&S_exact, "exact") < 0 || intern(&S_about, "about") < 0 ||
        intern(&S_at_least, "at_least") < 0 || intern(&S_at_most, "at_most") < 0 || intern(&S_km, "km") < 0 ||
        intern(&S_name, "name") < 0 || intern(&S_earliest, "earliest") < 0 || intern(&S_latest, "latest") < 0 ||
        intern(&S_precision, "precision") < 0 || intern(&S_retracted, "retracted") < 0 ||
        intern(&S_confirmed, "confirmed") < 0 || intern(&S_disputed, "disputed") < 0 ||
        intern(&S_reported, "reported") < 0 || intern(&A_numeric, "numeric") < 0 || intern(&A_int, "int") < 0 ||
        intern(&A_reliability, "reliability") < 0 || intern(&A_publisher, "publisher") < 0 ||
        intern(&A_published, "published") < 0 || intern(&A_published_day, "published_day") < 0 ||
        take(names, "date", &DATE_CLASS) < 0)
        return NULL;
    if (!PyType_Check(DATE_CLASS)) {
        PyErr_SetString(PyExc_TypeError, "configure(): date must be a class");
        return NULL;
    }
    if (ONE == NULL && (ONE = PyLong_FromLong(1)) == NULL) return NULL;
    if (FOUR == NULL && (FOUR = PyLong_FromLong(4)) == NULL) return NULL;
    if (ZERO_FLOAT == NULL && (ZERO_FLOAT = PyFloat_FromDouble(0.0)) == NULL) return NULL;
    if (EMPTY == NULL && (EMPTY = PyTuple_New(0)) == NULL) return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"resolve_distinct", (PyCFunction)(void (*)(void))resolve_distinct, METH_FASTCALL,
     "resolve_distinct(field_name, claims, sources, policy): as chronology.resolution.resolve_distinct."},
    {"field_views_from_stored", (PyCFunction)(void (*)(void))field_views_from_stored, METH_FASTCALL,
     "field_views_from_stored(fields, claims, sources): as chronology.resolution.field_views_from_stored."},
    {"ids_of_texts", (PyCFunction)(void (*)(void))ids_of_texts, METH_FASTCALL,
     "ids_of_texts(texts, memo): as chronology.resolution.ids_of_texts."},
    {"configure", configure, METH_O, "configure(names): the classes and constants of chronology.resolution."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "chronology._resolution",
    "resolve_distinct and field_views_from_stored in C; chronology/resolution.py is the reference they are tested against.", -1, methods,
};

PyMODINIT_FUNC PyInit__resolution(void) {
    return PyModule_Create(&module_definition);
}
