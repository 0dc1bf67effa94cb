/* libvirt XML for VMs and their volumes, written with libxml2's
 * xmlTextWriter: the library does the escaping, never string pasting. */
#ifndef YG_DOMAIN_XML_H
#define YG_DOMAIN_XML_H 1

#include <stdint.h>

struct domain_spec {
    const char *type;           /* "qemu" (TCG, no KVM needed), "kvm", "test" */
    const char *name;           /* yg-INSTANCE-vm-ID */
    const char *uuid;           /* 36 characters */
    const char *title;          /* department/request/vm, for people */
    int vcpus;
    int64_t memory_mib;
    const char *pool, *volume;  /* the disk; volume NULL: diskless */
    const char *bridge;         /* the segment's bridge; NULL: no NIC */
    const char *mac;
    /* Recorded in <metadata> for people and for recovery. */
    int64_t vm_id, request_id;
    const char *department;
    const char *ipv4, *ipv6;    /* may be NULL */
};

/* The domain XML (to free); NULL only if libxml2 fails. */
char *domain_xml_build(const struct domain_spec *spec);

/* A qcow2 volume of CAPACITY bytes, optionally backed by BACKING (a path)
 * of BACKING_FORMAT ("qcow2" or "raw"). */
char *domain_xml_volume(const char *name, uint64_t capacity, const char *backing,
                        const char *backing_format);

#define DOMAIN_XML_NAMESPACE "https://yunguan.invalid/xmlns/vm/1"

#endif
