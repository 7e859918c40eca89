/* list.h - intrusive doubly-linked lists with a sentinel (the kernel's
 * list_head shape). O(1) insert and unlink; no allocation. */
#ifndef TALLY_LIST_H
#define TALLY_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tally_list {
    struct tally_list *prev, *next;
} tally_list_t;

#define tally_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void tally_list_init(tally_list_t *l)
{
    l->prev = l->next = l;
}

static inline bool tally_list_empty(const tally_list_t *l)
{
    return l->next == l;
}

/* Unlinks n (which must be linked) and leaves it self-linked. */
static inline void tally_list_remove(tally_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline void tally_list_push_tail(tally_list_t *l, tally_list_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

#endif
