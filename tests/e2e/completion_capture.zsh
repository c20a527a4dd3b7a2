# Usage: zsh capture.zsh WORDS SCRIPT OUT
# Types WORDS and a Tab into an interactive zsh (under zpty, so the real completion
# system and ZLE run) that loaded SCRIPT, and appends every candidate the completion
# functions offer to OUT, one per line. compadd is wrapped, not replaced: the
# candidates are the ones the completion system would show.
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; autoload -U compinit; compinit -u -D; source ${(q)2}"
zpty -w z 'compadd () { builtin compadd -O __hits "$@"; print -l -- "${^__hits[@]}" >> '"${(q)3}"'; builtin compadd "$@" }'
zpty -w z "$1"$'\t'
integer i
for (( i = 0; i < 100; i++ )); do
    [[ -s $3 ]] && { sleep 0.5; break }
    sleep 0.1
done
zpty -d z
