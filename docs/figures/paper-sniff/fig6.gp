# fig6.gp: written by dds-sim (docs/game.md); run in this folder: gnuplot fig6.gp
mode = 'momentum'
set terminal pngcairo size 1100,800 font ',10'
set output 'fig6.png'
set datafile separator ','
set key top left font ',9'
set xlabel 'devices N'
pol = 'EO SO DADS DDS-momentum DDS-exact'
set multiplot layout 2,2 title 'Fig. 6: average latency and its parts against N'
do for [part in 'total server transfer edge'] {
  set title part eq 'total' ? '(a) total' : part eq 'server' ? '(b) server T_s' : part eq 'transfer' ? '(c) network T_t' : '(d) device T_e'
  set ylabel 'seconds'
  plot for [p in pol] 'fig6.csv' using 'n':(column(p.'_'.part)) with linespoints pt 7 ps 0.6 title p
}
unset multiplot
