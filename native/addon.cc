// SPDX-License-Identifier: Apache-2.0
// Thin node-addon-api layer over libbpf. Arguments are validated in
// src/kernel first; here we only guard against misuse that would crash.
// Every attachment is a bpf_link owned by this process (never pinned), so the
// kernel detaches it when the process dies, even on SIGKILL; the env cleanup
// hook destroys the ones still alive when a worker thread or process exits.
// (The one pin, pinProgram, lasts from handing a program to iptables' bpf
// match to its rule being made: the rule holds it, journaled as a chain.)
#include <napi.h>

#include "netns-socket.h"
#include "packet-queue.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

// enum bpf_attach_type values of Linux 6.6+ (not in Debian's 6.1 uapi headers).
constexpr __u32 kBpfTcxIngress = 46;
constexpr __u32 kBpfTcxEgress = 47;

// libbpf's print callback is process-global; keep its last warnings so an error
// can say why (e.g. the verifier's complaint), not just the errno.
std::mutex g_log_mu;
std::string g_log;

int LibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list args) {
  // Info lines (e.g. the skipped .vc.consts section) would only clutter our errors.
  if (level != LIBBPF_WARN) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(buf.data(), buf.size(), fmt, args);
  buf.resize(static_cast<size_t>(n));
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.append(buf);
  // The verifier's verdict is at the end of its log: keep the tail.
  if (g_log.size() > 4096) g_log.erase(0, g_log.size() - 4096);
  return 0;
}

std::string TakeLog() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::string out;
  out.swap(g_log);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void ClearLog() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.clear();
}

[[noreturn]] void ThrowErrno(Napi::Env env, const std::string &what, int err) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  std::string log = TakeLog();
  if (!log.empty()) msg += "\nlibbpf: " + log;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  throw e;
}

class Link;

// Per-env registry of live links, for the cleanup hook.
struct EnvState {
  std::set<Link *> links;
  Napi::FunctionReference object_ctor;
  Napi::FunctionReference link_ctor;
};

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfLink",
                       {
                           InstanceMethod("destroy", &Link::Destroy),
                           InstanceAccessor("id", &Link::Id, nullptr),
                           InstanceAccessor("alive", &Link::Alive, nullptr),
                       });
  }

  explicit Link(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Link>(info) {
    state_ = info.Env().GetInstanceData<EnvState>();
  }

  ~Link() override { Release(); }

  void Adopt(struct bpf_link *link) {
    link_ = link;
    if (state_) state_->links.insert(this);
  }

  // A link made by a raw bpf(BPF_LINK_CREATE) that libbpf 1.1 cannot make (TCX).
  void AdoptFd(int fd) {
    raw_fd_ = fd;
    if (state_) state_->links.insert(this);
  }

  void Release() {
    if (state_) state_->links.erase(this);
    if (link_) {
      bpf_link__destroy(link_);
      link_ = nullptr;
    }
    if (raw_fd_ >= 0) {
      close(raw_fd_);
      raw_fd_ = -1;
    }
  }

 private:
  Napi::Value Destroy(const Napi::CallbackInfo &info) {
    bool was = link_ != nullptr || raw_fd_ >= 0;
    Release();
    return Napi::Boolean::New(info.Env(), was);
  }

  Napi::Value Id(const Napi::CallbackInfo &info) {
    if (!link_ && raw_fd_ < 0) return info.Env().Null();
    struct bpf_link_info li;
    __u32 len = sizeof(li);
    std::memset(&li, 0, sizeof(li));
    if (bpf_obj_get_info_by_fd(link_ ? bpf_link__fd(link_) : raw_fd_, &li, &len) != 0) return info.Env().Null();
    return Napi::Number::New(info.Env(), li.id);
  }

  Napi::Value Alive(const Napi::CallbackInfo &info) {
    return Napi::Boolean::New(info.Env(), link_ != nullptr || raw_fd_ >= 0);
  }

  struct bpf_link *link_ = nullptr;
  int raw_fd_ = -1;
  EnvState *state_ = nullptr;
};

class Object : public Napi::ObjectWrap<Object> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("attachCgroup", &Object::AttachCgroup),
                           InstanceMethod("attachTcx", &Object::AttachTcx),
                           InstanceMethod("attach", &Object::Attach),
                           InstanceMethod("mapUpdate", &Object::MapUpdate),
                           InstanceMethod("mapLookup", &Object::MapLookup),
                           InstanceMethod("mapDelete", &Object::MapDelete),
                           InstanceMethod("mapKeys", &Object::MapKeys),
                           InstanceMethod("programs", &Object::Programs),
                           InstanceMethod("maps", &Object::Maps),
                           InstanceMethod("structLayout", &Object::StructLayout),
                           InstanceMethod("enums", &Object::Enums),
                           InstanceMethod("pinProgram", &Object::PinProgram),
                           InstanceMethod("close", &Object::Close),
                       });
  }

  // new BpfObject(path[, { rodata, share }]): open and load (verify) every
  // program of the object. rodata: the initial .rodata (its `const volatile`
  // globals, exactly its size); share: another BpfObject of the same file
  // whose maps this one uses instead of its own (all but .rodata).
  explicit Object(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Object>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path: expected a string");
    std::string path = info[0].As<Napi::String>();
    ClearLog();
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    long err = libbpf_get_error(obj_);
    if (err) {
      obj_ = nullptr;
      ThrowErrno(env, "bpf_object__open_file(" + path + ")", static_cast<int>(err));
    }
    if (info.Length() > 1 && info[1].IsObject()) {
      try {
        Configure(env, info[1].As<Napi::Object>());
      } catch (...) {
        bpf_object__close(obj_);
        obj_ = nullptr;
        throw;
      }
    }
    // The verifier gives up with EAGAIN when a signal is pending (libbpf retries
    // five times): a profiler's SIGPROF every 100 us (node --cpu-prof) made every
    // load fail. Signals are held on this thread meanwhile and come after it.
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &was);
    int rc = bpf_object__load(obj_);
    pthread_sigmask(SIG_SETMASK, &was, nullptr);
    if (rc) {
      bpf_object__close(obj_);
      obj_ = nullptr;
      ThrowErrno(env, "bpf_object__load(" + path + ")", rc);
    }
  }

  ~Object() override {
    if (obj_) bpf_object__close(obj_);
  }

 private:
  void Configure(Napi::Env env, Napi::Object opts) {
    Napi::Value rodata = opts.Get("rodata");
    if (rodata.IsBuffer()) {
      struct bpf_map *m = nullptr;
      bpf_object__for_each_map(m, obj_) {
        const char *name = bpf_map__name(m);
        if (name && std::strstr(name, ".rodata")) break;
      }
      if (!m) throw Napi::Error::New(env, "rodata: the object has no .rodata");
      size_t size = 0;
      bpf_map__initial_value(m, &size);
      auto b = rodata.As<Napi::Buffer<uint8_t>>();
      if (b.Length() != size)
        throw Napi::RangeError::New(
            env, "rodata: expected " + std::to_string(size) + " bytes, got " + std::to_string(b.Length()));
      int rc = bpf_map__set_initial_value(m, b.Data(), b.Length());
      if (rc) ThrowErrno(env, "bpf_map__set_initial_value(.rodata)", rc);
    }
    Napi::Value share = opts.Get("share");
    if (share.IsObject()) {
      Object *other = Object::Unwrap(share.As<Napi::Object>());
      if (!other) throw Napi::TypeError::New(env, "share: expected a BpfObject");
      struct bpf_object *src = other->Need(env);
      struct bpf_map *m = nullptr;
      bpf_object__for_each_map(m, obj_) {
        const char *name = bpf_map__name(m);
        // Internal maps (obj.rodata, .data, .bss) are the object's own: only named maps are shared.
        if (!name || std::strchr(name, '.')) continue;
        struct bpf_map *theirs = bpf_object__find_map_by_name(src, name);
        if (!theirs) throw Napi::Error::New(env, std::string("share: no map named '") + name + "' in the other object");
        int rc = bpf_map__reuse_fd(m, bpf_map__fd(theirs));
        if (rc) ThrowErrno(env, std::string("bpf_map__reuse_fd(") + name + ")", rc);
      }
    }
  }

  struct bpf_object *Need(Napi::Env env) {
    if (!obj_) throw Napi::Error::New(env, "BpfObject is closed");
    return obj_;
  }

  struct bpf_program *Prog(Napi::Env env, const Napi::Value &v) {
    if (!v.IsString()) throw Napi::TypeError::New(env, "program: expected a string");
    std::string name = v.As<Napi::String>();
    struct bpf_program *p = bpf_object__find_program_by_name(Need(env), name.c_str());
    if (!p) throw Napi::Error::New(env, "no program named '" + name + "' in the object");
    return p;
  }

  struct bpf_map *Map(Napi::Env env, const Napi::Value &v) {
    if (!v.IsString()) throw Napi::TypeError::New(env, "map: expected a string");
    std::string name = v.As<Napi::String>();
    struct bpf_map *m = bpf_object__find_map_by_name(Need(env), name.c_str());
    if (!m) throw Napi::Error::New(env, "no map named '" + name + "' in the object");
    return m;
  }

  static Napi::Buffer<uint8_t> Buf(Napi::Env env, const Napi::Value &v, size_t want, const char *what) {
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, std::string(what) + ": expected a Buffer");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    if (b.Length() != want)
      throw Napi::RangeError::New(
          env, std::string(what) + ": expected " + std::to_string(want) + " bytes, got " + std::to_string(b.Length()));
    return b;
  }

  Napi::Value NewLink(Napi::Env env, struct bpf_link *raw) {
    EnvState *state = env.GetInstanceData<EnvState>();
    Napi::Object o = state->link_ctor.New({});
    Link::Unwrap(o)->Adopt(raw);
    return o;
  }

  // pinProgram(program, path): pins it on a bpffs path, for a tool that takes
  // programs by path (iptables' bpf match). The caller unlinks the path as soon
  // as the tool holds the program: nothing of ours stays pinned.
  Napi::Value PinProgram(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_program *p = Prog(env, info[0]);
    if (!info[1].IsString()) throw Napi::TypeError::New(env, "path: expected a string");
    std::string path = info[1].As<Napi::String>();
    if (bpf_obj_pin(bpf_program__fd(p), path.c_str()) != 0) ThrowErrno(env, "bpf_obj_pin(" + path + ")", errno);
    return env.Undefined();
  }

  // attachCgroup(program, cgroupDir): a bpf_link on a cgroup v2 directory.
  Napi::Value AttachCgroup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_program *p = Prog(env, info[0]);
    if (!info[1].IsString()) throw Napi::TypeError::New(env, "cgroupPath: expected a string");
    std::string dir = info[1].As<Napi::String>();
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) ThrowErrno(env, "open(" + dir + ")", errno);
    ClearLog();
    struct bpf_link *l = bpf_program__attach_cgroup(p, fd);
    int err = static_cast<int>(libbpf_get_error(l));
    close(fd);  // the link holds its own reference to the cgroup
    if (err) ThrowErrno(env, std::string("bpf_program__attach_cgroup(") + bpf_program__name(p) + ", " + dir + ")", err);
    return NewLink(env, l);
  }

  // attachTcx(program, ifindex, 'ingress' | 'egress'): a TCX bpf_link on a
  // device of this process's network namespace, appended after the programs
  // already there. libbpf 1.1 predates bpf_program__attach_tcx and its
  // bpf_link_create() does not pass the tcx fields, so this is the raw syscall
  // with the kernel's (6.6+) layout of attr.link_create; the kernel checks the
  // attach type against the program type (sched_cls) itself.
  Napi::Value AttachTcx(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_program *p = Prog(env, info[0]);
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "ifindex: expected a number");
    int64_t ifindex = info[1].As<Napi::Number>().Int64Value();
    if (ifindex <= 0 || ifindex > INT32_MAX) throw Napi::RangeError::New(env, "ifindex: expected a positive integer");
    std::string where = info[2].IsString() ? std::string(info[2].As<Napi::String>()) : "";
    if (where != "ingress" && where != "egress")
      throw Napi::TypeError::New(env, "direction: expected 'ingress' or 'egress'");
    struct TcxLinkCreate {
      __u32 prog_fd;
      __u32 target_ifindex;
      __u32 attach_type;
      __u32 flags;
      __u32 relative_fd; /* 0 with flags 0: after the others */
      __u32 pad;
      __u64 expected_revision; /* 0: whatever the revision */
    } attr;
    static_assert(sizeof(TcxLinkCreate) == 32, "attr.link_create for tcx is 32 bytes");
    static_assert(offsetof(TcxLinkCreate, expected_revision) == 24, "tcx.expected_revision at 24");
    std::memset(&attr, 0, sizeof(attr));
    attr.prog_fd = static_cast<__u32>(bpf_program__fd(p));
    attr.target_ifindex = static_cast<__u32>(ifindex);
    attr.attach_type = where == "ingress" ? kBpfTcxIngress : kBpfTcxEgress;
    int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
    if (fd < 0)
      ThrowErrno(env,
                 std::string("bpf(BPF_LINK_CREATE, tcx ") + where + ", " + bpf_program__name(p) + ", ifindex " +
                     std::to_string(ifindex) + ")",
                 errno);
    EnvState *state = env.GetInstanceData<EnvState>();
    Napi::Object o = state->link_ctor.New({});
    Link::Unwrap(o)->AdoptFd(fd);
    return o;
  }

  // attach(program): auto-attach by section (tracepoints, tp_btf, raw_tp).
  Napi::Value Attach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_program *p = Prog(env, info[0]);
    ClearLog();
    struct bpf_link *l = bpf_program__attach(p);
    int err = static_cast<int>(libbpf_get_error(l));
    if (err) ThrowErrno(env, std::string("bpf_program__attach(") + bpf_program__name(p) + ")", err);
    return NewLink(env, l);
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_map *m = Map(env, info[0]);
    auto k = Buf(env, info[1], bpf_map__key_size(m), "key");
    auto v = Buf(env, info[2], bpf_map__value_size(m), "value");
    __u64 flags = info.Length() > 3 && info[3].IsNumber() ? static_cast<__u64>(info[3].As<Napi::Number>().Int64Value())
                                                          : static_cast<__u64>(BPF_ANY);
    if (bpf_map_update_elem(bpf_map__fd(m), k.Data(), v.Data(), flags) != 0)
      ThrowErrno(env, std::string("bpf_map_update_elem(") + bpf_map__name(m) + ")", errno);
    return env.Undefined();
  }

  Napi::Value MapLookup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_map *m = Map(env, info[0]);
    auto k = Buf(env, info[1], bpf_map__key_size(m), "key");
    auto out = Napi::Buffer<uint8_t>::New(env, bpf_map__value_size(m));
    if (bpf_map_lookup_elem(bpf_map__fd(m), k.Data(), out.Data()) != 0) {
      if (errno == ENOENT) return env.Null();
      ThrowErrno(env, std::string("bpf_map_lookup_elem(") + bpf_map__name(m) + ")", errno);
    }
    return out;
  }

  Napi::Value MapDelete(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_map *m = Map(env, info[0]);
    auto k = Buf(env, info[1], bpf_map__key_size(m), "key");
    if (bpf_map_delete_elem(bpf_map__fd(m), k.Data()) != 0) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      ThrowErrno(env, std::string("bpf_map_delete_elem(") + bpf_map__name(m) + ")", errno);
    }
    return Napi::Boolean::New(env, true);
  }

  Napi::Value MapKeys(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct bpf_map *m = Map(env, info[0]);
    size_t ks = bpf_map__key_size(m);
    Napi::Array out = Napi::Array::New(env);
    std::string prev, next(ks, '\0');
    bool first = true;
    uint32_t i = 0;
    while (bpf_map_get_next_key(bpf_map__fd(m), first ? nullptr : prev.data(), next.data()) == 0) {
      out.Set(i++, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t *>(next.data()), ks));
      prev = next;
      first = false;
    }
    return out;
  }

  Napi::Value Programs(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    struct bpf_program *p;
    bpf_object__for_each_program(p, Need(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    struct bpf_map *m;
    bpf_object__for_each_map(m, Need(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      o.Set("keySize", bpf_map__key_size(m));
      o.Set("valueSize", bpf_map__value_size(m));
      o.Set("maxEntries", bpf_map__max_entries(m));
      out.Set(i++, o);
    }
    return out;
  }

  struct btf *Btf(Napi::Env env) {
    struct btf *btf = bpf_object__btf(Need(env));
    if (!btf) throw Napi::Error::New(env, "the object has no BTF (build bpf/ with clang -g)");
    return btf;
  }

  // The field kind user space encodes: the integer's width, in network order
  // when a typedef on the way is __be16/__be32/__be64 (the header's own words).
  static std::string FieldKind(const struct btf *btf, __u32 id, const std::string &where) {
    bool be = false;
    const struct btf_type *t = btf__type_by_id(btf, id);
    while (t && (btf_is_typedef(t) || btf_is_mod(t))) {
      if (btf_is_typedef(t)) {
        std::string n = btf__name_by_offset(btf, t->name_off);
        if (n == "__be16" || n == "__be32" || n == "__be64") be = true;
      }
      t = btf__type_by_id(btf, t->type);
    }
    if (t && btf_is_int(t) && btf_int_offset(t) == 0 && btf_int_bits(t) == t->size * 8) {
      bool sign = (btf_int_encoding(t) & BTF_INT_SIGNED) != 0;
      std::string bits = std::to_string(t->size * 8);
      if (t->size == 1) return sign ? "i8" : "u8";
      if (be) return sign ? "" : "be" + bits;
      return (sign ? "i" : "u") + bits;
    }
    if (t && btf_is_enum(t) && t->size == 4) return "u32";
    if (t && btf_is_array(t)) return "bytes";
    throw std::runtime_error(where + ": a field of BTF kind " + std::to_string(t ? btf_kind(t) : -1) +
                             " (user space encodes integers, enums and byte arrays)");
  }

  // structLayout(name): { name, size, fields: [{ name, offset, size, kind }] } from the object's BTF.
  Napi::Value StructLayout(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "struct: expected a string");
    std::string name = info[0].As<Napi::String>();
    struct btf *btf = Btf(env);
    __s32 id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_STRUCT);
    if (id < 0) throw Napi::Error::New(env, "no struct " + name + " in the object's BTF (no map uses it?)");
    const struct btf_type *t = btf__type_by_id(btf, id);
    const struct btf_member *m = btf_members(t);
    Napi::Array fields = Napi::Array::New(env);
    for (__u16 i = 0; i < btf_vlen(t); i++, m++) {
      std::string field = btf__name_by_offset(btf, m->name_off);
      std::string where = "struct " + name + "." + field;
      if (btf_member_bitfield_size(t, i) != 0 || btf_member_bit_offset(t, i) % 8 != 0)
        throw Napi::Error::New(env, where + ": a bitfield (user space encodes whole bytes)");
      std::string kind;
      try {
        kind = FieldKind(btf, m->type, where);
      } catch (const std::runtime_error &e) {
        throw Napi::Error::New(env, e.what());
      }
      if (kind.empty()) throw Napi::Error::New(env, where + ": a signed network-order integer");
      __s64 size = btf__resolve_size(btf, m->type);
      Napi::Object f = Napi::Object::New(env);
      f.Set("name", field);
      f.Set("offset", Napi::Number::New(env, btf_member_bit_offset(t, i) / 8));
      f.Set("size", Napi::Number::New(env, static_cast<double>(size)));
      f.Set("kind", kind);
      fields.Set(i, f);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", name);
    out.Set("size", Napi::Number::New(env, t->size));
    out.Set("fields", fields);
    return out;
  }

  // enums(): { enumName: { CONSTANT: value } } for every named enum of the object's BTF.
  Napi::Value Enums(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    struct btf *btf = Btf(env);
    Napi::Object out = Napi::Object::New(env);
    __u32 n = btf__type_cnt(btf);
    for (__u32 id = 1; id < n; id++) {
      const struct btf_type *t = btf__type_by_id(btf, id);
      if (!btf_is_enum(t) || t->name_off == 0) continue;
      Napi::Object values = Napi::Object::New(env);
      const struct btf_enum *e = btf_enum(t);
      for (__u16 i = 0; i < btf_vlen(t); i++, e++)
        values.Set(btf__name_by_offset(btf, e->name_off), Napi::Number::New(env, e->val));
      out.Set(btf__name_by_offset(btf, t->name_off), values);
    }
    return out;
  }

  // close(): programs stay attached through their links; maps and programs
  // are freed by the kernel once the last link is gone.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    return info.Env().Undefined();
  }

  struct bpf_object *obj_ = nullptr;
};

Napi::Value LibbpfVersion(const Napi::CallbackInfo &info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

Napi::Value LiveLinks(const Napi::CallbackInfo &info) {
  EnvState *state = info.Env().GetInstanceData<EnvState>();
  return Napi::Number::New(info.Env(), state ? state->links.size() : 0);
}

// The credentials of the process at the other end of a connected unix socket
// (SO_PEERCRED), for the kill switch's channel: Node has no API for them.
Napi::Value PeerCredentials(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    Napi::Error::New(env, std::string("SO_PEERCRED: ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

void Cleanup(void *arg) {
  auto *state = static_cast<EnvState *>(arg);
  // Release() edits the set, so copy first.
  std::set<Link *> links = state->links;
  for (Link *l : links) l->Release();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    libbpf_set_print(LibbpfPrint);
    libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  });
  auto *state = new EnvState();
  env.SetInstanceData<EnvState>(state);  // deleted by node-addon-api at env teardown
  Napi::Function link = Link::Init(env);
  Napi::Function object = Object::Init(env);
  state->link_ctor = Napi::Persistent(link);
  state->object_ctor = Napi::Persistent(object);
  env.AddCleanupHook(Cleanup, state);
  exports.Set("BpfObject", object);
  exports.Set("BpfLink", link);
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  exports.Set("liveLinks", Napi::Function::New(env, LiveLinks));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials));
  InitPacketQueue(env, exports);
  InitNetnsSocket(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(vitest_chaos, Init)
