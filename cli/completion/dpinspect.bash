# bash completion for dpinspect: commands, options and their values.
# Installed by `cmake --install` as share/bash-completion/completions/dpinspect; to try it from a
# checkout: `source cli/completion/dpinspect.bash`. tests/cli/test_completion.py checks the lists
# below against `dpinspect --help` and `dpinspect CMD --help`, so that they cannot drift.

_dpinspect() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # --option=value: bash splits at "=" (COMP_WORDBREAKS), giving "--option" "=" "value".
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  local commands="inspect detect snapshot compare trace watch"

  # The command is the first word after the program that is one of them.
  local cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      inspect | detect | snapshot | compare | trace | watch)
        cmd=${COMP_WORDS[i]}
        break
        ;;
    esac
  done

  # The value of the option before the cursor.
  case $prev in
    --dataplane)
      COMPREPLY=($(compgen -W "auto nftables ebpf" -- "$cur"))
      return
      ;;
    -o | --output)
      if [[ $cmd == snapshot ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
      elif [[ $cmd == compare ]]; then
        COMPREPLY=($(compgen -W "text json markdown html" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "text json" -- "$cur"))
      fi
      return
      ;;
    --proto)
      COMPREPLY=($(compgen -W "tcp udp sctp icmp icmpv6" -- "$cur"))
      return
      ;;
    --ct)
      COMPREPLY=($(compgen -W "new established related invalid untracked" -- "$cur"))
      return
      ;;
    --engine)
      COMPREPLY=($(compgen -W "interp kernel both" -- "$cur"))
      return
      ;;
    --source)
      COMPREPLY=($(compgen -W "auto nflog kfree_skb counters" -- "$cur"))
      return
      ;;
    --ruleset | --iptables-save | --ipset-save | --node | --flows | --k8s | --output-file)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
    --before | --after)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -W "live" -- "$cur") $(compgen -f -- "$cur"))
      return
      ;;
    --bpffs | --policy-debug-dir)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -d -- "$cur"))
      return
      ;;
    --netns)
      # A name under /run/netns, or a path such as /proc/PID/ns/net.
      local names=""
      [[ -d /run/netns ]] && names=$(command ls /run/netns 2>/dev/null)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -W "$names" -- "$cur") $(compgen -f -- "$cur"))
      return
      ;;
    --iif | --oif | --endpoint)
      COMPREPLY=($(compgen -W "$(command ls /sys/class/net 2>/dev/null)" -- "$cur"))
      return
      ;;
    --src | --dst | --sport | --dport | --icmp-type | --icmp-code | --iface-prefix | --port | \
      --max-input-mb | --interval | --timeout | --group | --count | --rate)
      # An address, a pod, a number: nothing to offer.
      COMPREPLY=()
      return
      ;;
  esac

  local opts
  case $cmd in
    inspect)
      opts="-h --help --dataplane --ruleset --iptables-save --ipset-save --bpffs
            --policy-debug-dir --engine --node --netns --max-input-mb --src --dst --flows --k8s --no-crictl
            --iface-prefix --proto --sport --dport --icmp-type --icmp-code --iif --oif --ct -o
            --output -v --verbose --counters --interval"
      ;;
    detect)
      opts="-h --help --dataplane --ruleset --iptables-save --ipset-save --bpffs
            --policy-debug-dir --node --netns --max-input-mb -o --output"
      ;;
    snapshot)
      opts="-h --help --netns -o --output --k8s --bpffs --policy-debug-dir"
      ;;
    compare)
      opts="-h --help --before --after --node --netns --flows --port --k8s --iface-prefix --all
            -o --output --output-file --max-input-mb"
      ;;
    trace)
      opts="-h --help --netns --src --dst --iface-prefix --proto --sport --dport --icmp-type
            --icmp-code --iif --oif --timeout -o --output"
      ;;
    watch)
      opts="-h --help --netns --source --group --endpoint --iface-prefix --all --interval --count
            --timeout --rate -o --output --bpffs --policy-debug-dir"
      ;;
    *)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-h --help --version" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
      fi
      return
      ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}

complete -F _dpinspect dpinspect
