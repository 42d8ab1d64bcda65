# Shared by ./cae and the scripts: locating JDK 25 and the build tools. Source it; it defines
# functions only.

# Prints the Java major version of the `java` binary $1 (e.g. 25), or nothing.
java_major() {
    "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}' | cut -d. -f1
}

# Sets JAVA_HOME to a JDK 25 or newer: $JAVA_HOME if it is one, else the newest under /usr/lib/jvm.
find_jdk() {
    local candidate major best="" best_major=0
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
        major=$(java_major "$JAVA_HOME/bin/java")
        if [ "${major:-0}" -ge 25 ]; then
            export JAVA_HOME
            return 0
        fi
    fi
    for candidate in /usr/lib/jvm/*; do
        [ -x "$candidate/bin/javac" ] || continue
        major=$(java_major "$candidate/bin/java")
        if [ "${major:-0}" -ge 25 ] && [ "$major" -gt "$best_major" ]; then
            best=$candidate
            best_major=$major
        fi
    done
    if [ -z "$best" ]; then
        cat >&2 <<'MSG'
cae: no JDK 25 or newer found (looked at $JAVA_HOME and /usr/lib/jvm/*).
     Install one, for example Eclipse Temurin 25 from https://adoptium.net (on Debian/Ubuntu:
     add the Adoptium apt repository, then 'apt-get install temurin-25-jdk'), and either
     set JAVA_HOME to it or install it under /usr/lib/jvm.
MSG
        return 1
    fi
    export JAVA_HOME=$best
}

# Fails with instructions when a build tool is missing.
require_build_tools() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=("cmake (apt-get install cmake)")
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || missing+=("a C++ compiler (apt-get install g++)")
    command -v make >/dev/null 2>&1 || missing+=("make (apt-get install make)")
    command -v mvn >/dev/null 2>&1 || missing+=("Apache Maven 3.8+ (apt-get install maven)")
    if [ ${#missing[@]} -gt 0 ]; then
        echo "cae: missing build tools:" >&2
        printf '     - %s\n' "${missing[@]}" >&2
        echo "     scripts/setup.sh installs them on Debian/Ubuntu (as root or with sudo)." >&2
        return 1
    fi
}
