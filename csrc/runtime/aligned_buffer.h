// Cache-line aligned scratch memory for packed panels and workspaces.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace fusedprop::runtime {

inline constexpr std::size_t kCacheLine = 64;

// Owns `count` elements of T, 64-byte aligned, uninitialised. Grows on
// reserve(), never shrinks: a workspace reused across kernel calls.
template <class T>
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t count) { reserve(count); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), capacity_(other.capacity_) {
        other.data_ = nullptr;
        other.capacity_ = 0;
    }
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        if (this != &other) {
            std::free(data_);
            data_ = other.data_;
            capacity_ = other.capacity_;
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
        void* p = std::aligned_alloc(kCacheLine, bytes);
        if (p == nullptr) throw std::bad_alloc();
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
};

}  // namespace fusedprop::runtime
