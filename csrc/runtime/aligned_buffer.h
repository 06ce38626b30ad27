// Cache-line aligned scratch memory for packed panels and workspaces.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fusedprop::runtime {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHugePage = std::size_t(2) << 20;

// Pages::huge asks Linux for 2 MiB transparent huge pages (madvise) once a
// buffer reaches kHugeFrom bytes; the size is rounded up to whole huge pages.
// The GEMM's packed panels use it: the microkernel streams a 150-200 KiB
// packed A block and a 2 MiB packed B block, which on 4 KiB pages need more
// TLB entries than the L1 TLB has (huge pages measured 1-3% faster on square
// GEMMs of 512 and 1024). Elsewhere the rounding would only waste memory.
enum class Pages { normal, huge };
inline constexpr std::size_t kHugeFrom = std::size_t(64) << 10;

// Owns `count` elements of T, 64-byte aligned, uninitialised. Grows on
// reserve(), never shrinks: a workspace reused across kernel calls.
template <class T>
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(Pages pages) : pages_(pages) {}
    explicit AlignedBuffer(std::size_t count) { reserve(count); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& other) noexcept
        : data_(other.data_), capacity_(other.capacity_), pages_(other.pages_) {
        other.data_ = nullptr;
        other.capacity_ = 0;
    }
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        if (this != &other) {
            std::free(data_);
            data_ = other.data_;
            capacity_ = other.capacity_;
            pages_ = other.pages_;
            other.data_ = nullptr;
            other.capacity_ = 0;
        }
        return *this;
    }
    ~AlignedBuffer() { std::free(data_); }

    // Throws std::bad_alloc when the memory cannot be had (including a size
    // whose byte count overflows).
    T* reserve(std::size_t count) {
        if (count <= capacity_) return data_;
        if (count > (static_cast<std::size_t>(-1) - kCacheLine) / sizeof(T)) throw std::bad_alloc();
        std::size_t bytes = (count * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
        const bool huge = pages_ == Pages::huge && bytes >= kHugeFrom;
        if (huge) {
            if (bytes > static_cast<std::size_t>(-1) - kHugePage) throw std::bad_alloc();
            bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
        }
        void* p = std::aligned_alloc(huge ? kHugePage : kCacheLine, bytes);
        if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure only costs speed
#endif
        std::free(data_);
        data_ = static_cast<T*>(p);
        capacity_ = count;
        return data_;
    }

    T* data() const { return data_; }
    std::size_t capacity() const { return capacity_; }

private:
    T* data_ = nullptr;
    std::size_t capacity_ = 0;
    Pages pages_ = Pages::normal;
};

}  // namespace fusedprop::runtime
